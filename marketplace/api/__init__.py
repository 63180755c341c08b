"""The marketplace's HTTP API: routes per resource, dependencies, response models and the
row -> response mapping; `marketplace.app.create_app` mounts it."""
