"""Reading data: tables and their feature preprocessing, image folders, decoded images, splits, sources.

Names load on first use (PEP 562): reading a table to predict on does not import the image decoder (torchvision)
or the splitters (scikit-learn) behind the other names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelwise._lazy import lazy_exports

if TYPE_CHECKING:
    from labelwise.data.folders import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
    from labelwise.data.folders import scan_image_folder as scan_image_folder
    from labelwise.data.images import ImageSpec as ImageSpec
    from labelwise.data.images import LoadedImages as LoadedImages
    from labelwise.data.images import infer_image_spec as infer_image_spec
    from labelwise.data.images import load_images as load_images
    from labelwise.data.sources import Source as Source
    from labelwise.data.sources import load_source as load_source
    from labelwise.data.sources import source_from_frame as source_from_frame
    from labelwise.data.splits import split_train_valid as split_train_valid
    from labelwise.data.tables import CategoricalColumn as CategoricalColumn
    from labelwise.data.tables import NumericColumn as NumericColumn
    from labelwise.data.tables import TablePreprocessor as TablePreprocessor
    from labelwise.data.tables import read_columns as read_columns
    from labelwise.data.tables import read_table as read_table
    from labelwise.data.transforms import image_transforms as image_transforms

_EXPORTS = {
    "IMAGE_EXTENSIONS": "labelwise.data.folders",
    "CategoricalColumn": "labelwise.data.tables",
    "ImageSpec": "labelwise.data.images",
    "LoadedImages": "labelwise.data.images",
    "NumericColumn": "labelwise.data.tables",
    "Source": "labelwise.data.sources",
    "TablePreprocessor": "labelwise.data.tables",
    "image_transforms": "labelwise.data.transforms",
    "infer_image_spec": "labelwise.data.images",
    "load_images": "labelwise.data.images",
    "load_source": "labelwise.data.sources",
    "read_columns": "labelwise.data.tables",
    "read_table": "labelwise.data.tables",
    "scan_image_folder": "labelwise.data.folders",
    "source_from_frame": "labelwise.data.sources",
    "split_train_valid": "labelwise.data.splits",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
