"""target-anaplan: a Singer target that loads streams into Anaplan import data sources."""
