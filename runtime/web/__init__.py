"""The browser as an edge device: ``python -m runtime.web ARTIFACT`` serves a static page on 127.0.0.1 that runs
the artifact with ONNX Runtime Web (WASM with SIMD and threads; WebGPU where the browser has it).

- :mod:`.plan`: what the page runs, read from the manifest (``web.json``); export records it (``notes.web``);
- :mod:`.vendor`: the ORT Web files, copied out of the pinned npm package and checked against ``vendor.lock.json``;
- :mod:`.server`: the standard-library server (only the manifest's files, the pages and the vendored files,
  with the cross-origin isolation headers WASM threads need);
- ``static/``: the pages (index: upscale; check.html: the references; bench.html: 640x360) and their modules.

No torch, no build step, nothing fetched at run time but from the local server.
"""
