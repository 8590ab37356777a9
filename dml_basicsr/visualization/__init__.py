"""Pictures of trained models as uint8 arrays: kernel and weight-map grids (also drawn during training)
and the paper's figures (``basicsr visualize``)."""
