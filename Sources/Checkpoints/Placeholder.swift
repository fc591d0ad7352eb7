// The Checkpoints module: HDF5 model files and training state (see ../shared/DESIGN.md).
