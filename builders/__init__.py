"""The datasets builder and the named configurations (``configs/*.yaml``); installed as
``mmmi_hf.builders``."""
