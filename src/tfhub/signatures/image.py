"""Image module helpers of the TF1 Hub format: the expected input size and channels.

The common image signature takes ``images``: float32 ``[batch, height, width, 3]`` in [0, 1].
A module may attach an ``ImageModuleInfo`` message (key ``image_module_info``) to declare its
default size when the input shape leaves height and width open.
"""

from __future__ import annotations

from typing import Any

from tfhub.errors import UsageError
from tfhub.protos import ImageModuleInfo
from tfhub.tf1.spec import attach_message

__all__ = [
    "ImageModuleInfo",
    "attach_image_module_info",
    "get_expected_image_size",
    "get_num_image_channels",
]

IMAGE_MODULE_INFO_KEY = "image_module_info"


def attach_image_module_info(image_module_info: Any) -> None:
    """Attaches an ``ImageModuleInfo`` to the module being defined (inside ``module_fn``)."""
    attach_message(IMAGE_MODULE_INFO_KEY, image_module_info)


def _images_shape(module_or_spec: Any, signature: str | None, input_name: str | None) -> Any:
    name = input_name or "images"
    infos = module_or_spec.get_input_info_dict(signature)
    if name not in infos:
        raise UsageError(
            f"Module is missing input '{name}' in signature '{signature or 'default'}'."
        )
    return infos[name].get_shape()


def get_expected_image_size(
    module_or_spec: Any, signature: str | None = None, input_name: str | None = None
) -> list[int]:
    """``[height, width]`` the module expects: from its ImageModuleInfo, else its input shape.

    Raises:
        UsageError: no such input, or a shape without known height and width.
    """
    info = module_or_spec.get_attached_message(IMAGE_MODULE_INFO_KEY, ImageModuleInfo)
    if info is not None:
        size = info.default_image_size
        if size.height and size.width:
            return [size.height, size.width]
    shape = _images_shape(module_or_spec, signature, input_name)
    dims = shape.as_list() if shape.rank is not None else None
    if not dims or len(dims) != 4 or dims[1] is None or dims[2] is None:
        raise UsageError(
            f"Shape of module input is {shape}, expected [batch_size, height, width, "
            "num_channels] with known height and width."
        )
    return [int(dims[1]), int(dims[2])]


def get_num_image_channels(
    module_or_spec: Any, signature: str | None = None, input_name: str | None = None
) -> int:
    """The number of channels of the module's image input (usually 3).

    Raises:
        UsageError: no such input, or a shape without known channels.
    """
    shape = _images_shape(module_or_spec, signature, input_name)
    dims = shape.as_list() if shape.rank is not None else None
    if not dims or len(dims) != 4 or dims[3] is None:
        raise UsageError(
            f"Shape of module input is {shape}, expected [batch_size, height, width, "
            "num_channels] with known num_channels."
        )
    return int(dims[3])
