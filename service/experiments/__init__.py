"""Training experiments that test the theory: seeded datasets, architecture variants around the plan,
training runs, their aggregation and the accuracy-against-depth figure (docs/experiments.md)."""
