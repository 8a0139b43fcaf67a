"""open_source(spec): turn what the user typed (path or builtin name) into an ImageSource."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ambient_eval.data.base import ArraySource, ImageSource, select_subset
from ambient_eval.errors import AmbientError

_MNIST_RE = re.compile(r"idx3[-.]ubyte(\.gz)?$", re.IGNORECASE)
_CIFAR_FILE_RE = re.compile(r"^(data_batch_\d+|test_batch)$")

FORMATS_HELP = ("an image folder, a .zip or uncompressed .tar of images, a .npz/.npy uint8 array, "
                "a CIFAR-10/100 python batch directory or .tar.gz, an MNIST *-idx3-ubyte[.gz] file, "
                "or builtin:digits / builtin:digits-16 (optionally :train or :test)")


def open_source(spec: str | os.PathLike | ImageSource, *, max_images: int | None = None,
                subset_seed: int = 0, skip_bad: bool = False, resize: int | None = None,
                labels: str | None = None, crop: bool = False) -> ImageSource:
    """Open an image source.

    spec: folder | archive.zip | archive.tar | x.npz | x.npy | builtin:digits[-16][:train|:test] |
          CIFAR python batches (dir, .tar.gz, or one data_batch_N/test_batch file) |
          MNIST *-idx3-ubyte[.gz]. Archives and CIFAR sets take '#sub/dir' (e.g. 'x.tar#train',
          'cifar-10-batches-py#test') to select a folder / split inside.
    max_images: seeded random subset (numpy default_rng(subset_seed).choice, sorted).
    skip_bad: skip unreadable images (listed in source.skipped) instead of failing.
    resize: resize every image to resize x resize (PIL bicubic); None requires equal sizes.
    crop: with resize, center-crop each image to a square first (aspect kept, as FID on COCO).
    labels: None (dataset.json when present), 'folders' (class = first subfolder), 'dataset.json'
            (required), or 'none'.
    """
    if isinstance(spec, ImageSource):
        if max_images is None and resize is None:
            return spec
        raise AmbientError("max_images/resize cannot be applied to an already opened source. "
                           "Pass the path or spec string instead.")
    if resize is not None and (int(resize) != resize or resize < 1):
        raise AmbientError(f"--resize must be a positive integer, got {resize}. Pass e.g. --resize 64.")
    text = os.fspath(spec)
    if text.startswith("builtin:"):
        from ambient_eval.data.builtin import load_builtin

        images, labs, desc = load_builtin(text)
        return array_source(images, labs, desc, max_images, subset_seed, resize, crop)
    path, prefix = _split_prefix(text)
    name = path.name.lower()
    if path.is_dir():
        from ambient_eval.data import cifar

        if cifar.is_cifar_dir(path):
            images, labs, desc = cifar.load_cifar(path, prefix)
            return array_source(images, labs, desc, max_images, subset_seed, resize, crop)
        from ambient_eval.data.containers import FolderContainer

        return file_source(FolderContainer(path, prefix), max_images, subset_seed, skip_bad, resize, labels, crop)
    if name.endswith(".npy") or name.endswith(".npz"):
        from ambient_eval.data.arrays import load_npy, load_npz

        if name.endswith(".npy"):
            images, labs, desc = load_npy(path), None, f"npy {path}"
        else:
            images, labs, key = load_npz(path)
            desc = f"npz {path}"
        return array_source(images, labs, desc, max_images, subset_seed, resize, crop)
    if name.endswith(".zip"):
        from ambient_eval.data.containers import ZipContainer

        return file_source(ZipContainer(path, prefix), max_images, subset_seed, skip_bad, resize, labels, crop)
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        from ambient_eval.data import cifar

        if cifar.is_cifar_tar(path):
            images, labs, desc = cifar.load_cifar(path, prefix)
            return array_source(images, labs, desc, max_images, subset_seed, resize, crop)
        if not name.endswith(".tar"):
            raise AmbientError(
                f"'{path}' is a compressed tar that is not a CIFAR python archive; images in a "
                "compressed tar cannot be read lazily. Extract it to a folder, or use an "
                "uncompressed .tar or a .zip.")
        from ambient_eval.data.containers import TarContainer

        return file_source(TarContainer(path, prefix), max_images, subset_seed, skip_bad, resize, labels, crop)
    if _MNIST_RE.search(name):
        from ambient_eval.data.mnist import load_mnist

        images, labs, desc = load_mnist(path)
        return array_source(images, labs, desc, max_images, subset_seed, resize, crop)
    if _CIFAR_FILE_RE.match(path.name):
        from ambient_eval.data import cifar

        images, labs, desc = cifar.load_cifar(path, prefix)
        return array_source(images, labs, desc, max_images, subset_seed, resize, crop)
    raise AmbientError(f"Cannot tell what kind of image source '{path}' is. Pass {FORMATS_HELP}.")


def _split_prefix(text: str) -> tuple[Path, str]:
    """'archive.zip#sub/dir' => (Path('archive.zip'), 'sub/dir'); checks that the path exists."""
    path, prefix = Path(text), ""
    if not path.exists() and "#" in text:
        head, _, prefix = text.rpartition("#")
        path = Path(head)
    if not path.exists():
        if path.is_symlink():   # a cycle or a dangling link: say so rather than "does not exist"
            from ambient_eval.files.user_files import check_regular_file

            check_regular_file(path, "Image source", f"Pass {FORMATS_HELP}.")
        raise AmbientError(f"Image source '{text}' does not exist. Pass {FORMATS_HELP}.")
    return path, prefix


def array_source(images: np.ndarray, labels: np.ndarray | None, description: str,
                 max_images: int | None, subset_seed: int, resize: int | None,
                 crop: bool = False) -> ArraySource:
    """ArraySource over `images` (N first) with the seeded subset applied."""
    if images.ndim < 1 or images.shape[0] == 0:
        raise AmbientError(f"{description} contains no images. Point the command at a source with images.")
    if labels is not None and labels.shape[0] != images.shape[0]:
        raise AmbientError(f"{description} has {images.shape[0]} images but {labels.shape[0]} labels. "
                           "Store one label per image.")
    index = select_subset(images.shape[0], max_images, subset_seed, description)
    return ArraySource(images, labels, description=description, index=index, resize=resize, crop=crop)


def file_source(container, max_images, subset_seed, skip_bad, resize, labels_mode, crop=False):
    """FileSource over the images of a folder/zip/tar container, subset and labels applied."""
    from ambient_eval.data.files import FileSource, find_labels, image_names

    names = image_names(container)
    labs, classes = find_labels(container, names, labels_mode)
    index = select_subset(len(names), max_images, subset_seed, container.describe())
    if index is not None:
        names = [names[i] for i in index]
        labs = None if labs is None else labs[index]
    return FileSource(container, names, labs, resize=resize, skip_bad=skip_bad, subset=index,
                      class_names=classes, crop=crop)
