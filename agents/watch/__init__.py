"""A LeaseEscrow watcher of one's own: look at services the marketplace sees down, through
their public names, and co-sign the down stretches seen down here too."""
