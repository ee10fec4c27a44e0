"""Config files: `get_config(arg)` per recipe, selected with `--config=NAME[:ARG]`."""
