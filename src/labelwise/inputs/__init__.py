"""How a `Source` becomes what a network reads: one encoder per column, fitted on training rows, grouped.

See `labelwise.inputs.columns` for the encoders and their registry, `Inputs` for the groups and the combiner.
Everything is stored as JSON (`Inputs.to_dict`), never pickled.
"""

from labelwise.inputs._inputs import Inputs as Inputs
from labelwise.inputs._inputs import NetworkInput as NetworkInput
from labelwise.inputs._inputs import drop_unreadable as drop_unreadable
from labelwise.inputs._inputs import inputs_from_dict as inputs_from_dict
from labelwise.inputs._values import Encoded as Encoded
from labelwise.inputs._values import Values as Values
from labelwise.inputs.columns import ImageColumn as ImageColumn
from labelwise.inputs.columns import column_kinds as column_kinds
from labelwise.inputs.columns import register_column as register_column

__all__ = [
    "Encoded",
    "ImageColumn",
    "Inputs",
    "NetworkInput",
    "Values",
    "column_kinds",
    "drop_unreadable",
    "inputs_from_dict",
    "register_column",
]
