// Programs that import `Distill` see the recipe types too, as before the recipe schema became a
// module of its own (`DistillRecipes`).
@_exported import DistillRecipes
