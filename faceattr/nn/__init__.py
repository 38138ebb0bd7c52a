"""The networks of a view and what trains them: configs, VAE and critic, the VGG19 loss network,
the losses of eq. 5-8, checkpoints."""
