"""tfvr's inference layer, below the CLIs and above `tfvr.export`: opening models (`client`), temporal windowing
(`windows`), spatial tiling (`tiling`), streaming frame I/O with the one atomic writer and progress bar (`io`), and
the commands' bodies (`restore`, `inpaint`, `synthesize`, `evaluate`). Nothing here imports `tfvr.cli`."""
