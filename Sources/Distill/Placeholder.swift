// The Distill module: recipes, the trainer, metrics and reports (see ../shared/DESIGN.md).
