"""Bundled trainer: corruptions, sigma_tn annotation (Ambient-Omni), EDM / ambient / noisy / CEP training."""
