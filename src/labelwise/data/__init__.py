"""Reading data: tables and their feature preprocessing, image folders, decoded images, splits, sources."""

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

__all__ = [
    "IMAGE_EXTENSIONS",
    "CategoricalColumn",
    "ImageSpec",
    "LoadedImages",
    "NumericColumn",
    "Source",
    "TablePreprocessor",
    "image_transforms",
    "infer_image_spec",
    "load_images",
    "load_source",
    "read_columns",
    "read_table",
    "scan_image_folder",
    "source_from_frame",
    "split_train_valid",
]
