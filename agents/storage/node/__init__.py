"""The storage node: what someone who lends disk space runs."""
