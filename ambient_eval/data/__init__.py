"""Image sources: folders, zips/tars, npz/npy arrays, built-in digits, CIFAR batches, MNIST IDX.

Every source yields uint8 NCHW 3-channel CPU tensors in batches (see base.ImageSource).
"""
from ambient_eval.data.base import ArraySource, ImageSource
from ambient_eval.data.open import open_source

__all__ = ["ArraySource", "ImageSource", "open_source"]
