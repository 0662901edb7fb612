"""Dataset quantization: coreset selectors (`selectors`), patch embedders (`embedders`),
and `dqcl select` over feature files and image folders (`select_files`)."""
