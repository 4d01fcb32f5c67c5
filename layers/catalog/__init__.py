"""The one catalogue of layers: what each layer is, and everything derived from it."""
