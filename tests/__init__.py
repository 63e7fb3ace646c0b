"""target-anaplan's tests: a package so that its kit is imported as `tests.kit`."""
