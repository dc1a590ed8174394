"""The all-epochs kernels of the linear engine: ``common`` (what they share), ``triton``
(CUDA; the jitted kernel in ``_triton_kernel``) and ``native`` (C++ on CPU: the source
``native.cpp``, built and cached by ``native_build``). Pure torch."""
