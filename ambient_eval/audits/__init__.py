"""Audits on generated samples: memorization (FAISS nearest neighbours) and reproducibility.

    embed.py              --embed name -> extractor; L2-normalized embeddings (cached)
    search.py             FAISS search: exact / IVF / IVF-PQ / HNSW, streaming adds, saved indexes
    memorization.py       per-sample scores, copy flags, summary with bootstrap CIs (pure numpy)
    memorization_run.py   the audit end to end (embed, index, search, score, write files)
    reproducibility*.py   shared-noise agreement between models (Zhang et al. 2023)
"""
