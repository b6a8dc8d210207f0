"""The training path: the harness and its loop, batches on the device, CUDA graphs, augmentation, compute accounting, threads."""
