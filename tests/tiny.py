"""The smallest trainer settings the tests build on (width-4 ResNet, 16 px, batch 16)."""

TINY_MODEL = [
    "model.width=4",
    "model.projector_hidden=16",
    "model.projector_out=8",
    "augment.image_size=16",
    "batch_size=16",
    "record.progress=false",
]
