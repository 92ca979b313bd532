"""cnnplan's REST service and command line: thin layers over the `solver` package."""
