"""Public datasets: recipes (`recipes`), safe downloads (`download`), converters (`convert`),
folder manifests and registration (`manifest`), and `dqcl data fetch` itself (`fetch`)."""
