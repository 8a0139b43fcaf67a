"""Where and how work runs: device choice (`device`), float32 precision policy (`precision`), CPU threads
(`threads`), out-of-memory handling (`oom`), progress bars (`progress`) and the faiss build in use (`faiss_dist`)."""
