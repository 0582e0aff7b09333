"""Meta graph surgery of the TF1 Hub format, shared by module specs and modules.

A TF1 Hub module stores its asset file names in the ``saved_model_assets`` collection and an
``ASSET_PLACEHOLDER`` in each asset constant; loading points those constants at the module's
own ``assets/`` directory. Nothing here reads or writes ``saved_model.pb`` itself (see
:mod:`tfhub.metagraph`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tensorflow as tf

from tfhub.errors import NotAModelError, UsageError

__all__ = [
    "ASSETS_KEY",
    "ASSET_PLACEHOLDER",
    "GK",
    "asset_tensor_names",
    "const_node",
    "pack_assets",
    "strip_collections",
    "unpack_assets",
]

v1 = tf.compat.v1
GK = v1.GraphKeys
ASSETS_KEY = "saved_model_assets"
ASSET_PLACEHOLDER = b"SAVEDMODEL-ASSET"

AssetFileDef = type(v1.MetaGraphDef().asset_file_def.add())


def strip_collections(meta: Any, *, keep: Iterable[str]) -> Any:
    """A copy of ``meta`` that holds only the collections in ``keep``."""
    result = v1.MetaGraphDef()
    result.CopyFrom(meta)
    keep = set(keep)
    for name in list(result.collection_def):
        if name not in keep:
            del result.collection_def[name]
    return result


def const_node(meta: Any, tensor_name: str) -> Any:
    node_name = tensor_name.split(":")[0]
    for node in meta.graph_def.node:
        if node.name == node_name:
            if node.op != "Const" or node.attr["dtype"].type != tf.string.as_datatype_enum:
                raise NotAModelError(
                    f"Asset {tensor_name} is not a scalar string constant; the module's "
                    "saved_model.pb is not in the TF1 Hub format."
                )
            return node
    raise UsageError(f"Asset tensor {tensor_name} is missing from the graph.")


def asset_tensor_names(meta: Any) -> list[str]:
    # A tensor may be listed twice (e.g. by the user and by a table initializer).
    stored = meta.collection_def.get(GK.ASSET_FILEPATHS)
    return list(dict.fromkeys(stored.node_list.value)) if stored is not None else []


def pack_assets(meta: Any, assets_dir: Path) -> None:
    """Copies asset files into ``assets_dir`` and records them as ``saved_model_assets``."""
    if GK.ASSET_FILEPATHS not in meta.collection_def:
        return
    used: set[str] = set()
    anys = meta.collection_def[ASSETS_KEY].any_list.value
    for name in asset_tensor_names(meta):
        node = const_node(meta, name)
        source = tf.make_ndarray(node.attr["value"].tensor).item().decode("utf8")
        base = os.path.basename(source)
        filename, n = base, 1
        while filename in used:
            stem, ext = os.path.splitext(base)
            filename, n = f"{stem}_{n}{ext}", n + 1
        used.add(filename)
        assets_dir.mkdir(exist_ok=True)
        shutil.copyfile(source, assets_dir / filename)
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(ASSET_PLACEHOLDER))
        asset = AssetFileDef(filename=filename)
        asset.tensor_info.name = name
        anys.add().Pack(asset)


def unpack_assets(meta: Any, module_dir: Path) -> None:
    """Points asset constants at ``<module_dir>/assets/<file>`` (so modules can move)."""
    assets: list[Any] = list(meta.asset_file_def)
    stored = meta.collection_def.get(ASSETS_KEY)
    for packed in stored.any_list.value if stored is not None else ():
        asset = AssetFileDef()
        packed.Unpack(asset)
        assets.append(asset)
    assets_dir = (module_dir / "assets").resolve()
    for asset in assets:
        path = (assets_dir / asset.filename).resolve()
        if assets_dir not in path.parents:
            raise NotAModelError(
                f"Asset filename ({asset.filename}) points outside assets_dir in {module_dir}."
            )
        node = const_node(meta, asset.tensor_info.name)
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(str(path).encode("utf8")))
        if asset.tensor_info.name not in asset_tensor_names(meta):
            meta.collection_def[GK.ASSET_FILEPATHS].node_list.value.append(asset.tensor_info.name)
    if ASSETS_KEY in meta.collection_def:
        del meta.collection_def[ASSETS_KEY]
    meta.ClearField("asset_file_def")
