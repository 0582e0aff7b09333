"""The protocol buffers of the TF1 Hub format, built at run time from their descriptions.

Wire-compatible with ``tensorflow_hub``'s ``module_def.proto``, ``module_attachment.proto`` and
``image_module_info.proto`` (package ``tensorflow_hub``), and with TensorFlow's ``SavedModel``
message, whose meta graphs are kept here as serialized bytes (a ``bytes`` field and an embedded
message share one wire encoding) and parsed with the public ``tf.compat.v1.MetaGraphDef``.
The classes live in a private descriptor pool, so they never clash with ``tensorflow_hub``'s
own generated classes in the same process.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["FORMAT_V3", "ImageModuleInfo", "ModuleAttachment", "ModuleDef", "SavedModelFile"]

FORMAT_V3 = 3

_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(
        name="tfhub/tf1_hub_format.proto", package="tensorflow_hub", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> Any:
        msg = f.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
        return msg

    module_def = message(
        "ModuleDef",
        ("format", 1, _F.TYPE_ENUM, _F.LABEL_OPTIONAL, ".tensorflow_hub.ModuleDef.Format"),
        ("required_features", 2, _F.TYPE_STRING, _F.LABEL_REPEATED, ""),
    )
    fmt = module_def.enum_type.add(name="Format")
    fmt.value.add(name="FORMAT_UNSPECIFIED", number=0)
    fmt.value.add(name="FORMAT_V3", number=3)
    message(
        "ModuleAttachment",
        ("key", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("value", 2, _F.TYPE_BYTES, _F.LABEL_OPTIONAL, ""),
    )
    info = message(
        "ImageModuleInfo",
        (
            "default_image_size",
            1,
            _F.TYPE_MESSAGE,
            _F.LABEL_OPTIONAL,
            ".tensorflow_hub.ImageModuleInfo.InputSize",
        ),
    )
    size = info.nested_type.add(name="InputSize")
    size.field.add(name="height", number=1, type=_F.TYPE_INT32, label=_F.LABEL_OPTIONAL)
    size.field.add(name="width", number=2, type=_F.TYPE_INT32, label=_F.LABEL_OPTIONAL)
    size.reserved_range.add(start=3, end=4)
    message(
        "SavedModelFile",
        ("saved_model_schema_version", 1, _F.TYPE_INT64, _F.LABEL_OPTIONAL, ""),
        ("meta_graphs", 2, _F.TYPE_BYTES, _F.LABEL_REPEATED, ""),
    )
    return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"tensorflow_hub.{name}"))


ModuleDef = _cls("ModuleDef")
ModuleAttachment = _cls("ModuleAttachment")
ImageModuleInfo = _cls("ImageModuleInfo")
SavedModelFile = _cls("SavedModelFile")
