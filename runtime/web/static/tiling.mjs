// Seamless tiling, the same arithmetic as runtime/tiling.py: tiles of at most `tile` LR pixels a side whose
// regions overlap by the halo, the whole-image attention statistics first (each tile's core features summed,
// divided by the feature map's size), then every tile through the main graph with those statistics, only each
// output core kept. A tile is {y0, y1, x0, x1, cy0, cy1, cx0, cx1}: its region and the core it owns.

export function planTiles(height, width, tile, halo, align = 1) {
  align = Math.max(1, align);
  const step = Math.max(align, Math.floor(tile / align) * align);
  const margin = Math.ceil(Math.max(0, halo) / align) * align;
  const tiles = [];
  for (let cy0 = 0; cy0 < height; cy0 += step) {
    const cy1 = Math.min(cy0 + step, height);
    for (let cx0 = 0; cx0 < width; cx0 += step) {
      const cx1 = Math.min(cx0 + step, width);
      tiles.push({ y0: Math.max(0, cy0 - margin), y1: Math.min(height, cy1 + margin),
                   x0: Math.max(0, cx0 - margin), x1: Math.min(width, cx1 + margin), cy0, cy1, cx0, cx1 });
    }
  }
  return tiles;
}

// Core [start, stop) of a region starting at `origin`, in a map `factor` x the input size (ceil: the network
// pads odd sizes up).
function span(start, stop, origin, factor) {
  return [Math.ceil((start - origin) * factor), Math.ceil((stop - origin) * factor)];
}

function feeds(ort, session, image, h, w, pooled, names) {
  const out = {};
  for (const name of session.inputNames) {
    const k = names.indexOf(name);
    // A copy: WASM in a worker (proxy) takes the buffers it is given, and the statistics feed every tile.
    out[name] = k >= 0 ? new ort.Tensor('float32', pooled[k].slice(), [1, pooled[k].length])
                       : new ort.Tensor('float32', image, [1, 3, h, w]);
  }
  return out;
}

async function runOne(session, input) {
  const result = await session.run(input);
  return result[session.outputNames[0]];
}

// The whole-image pooled_<i> of every dynamic layer (Float32Array of C_i each). `read(tile)` -> the tile region
// as Float32Array (3, h, w).
export async function pooledStatistics(ort, read, tiles, tiling, stats, onTile = () => {}) {
  const pooled = [];
  for (let i = 0; i < stats.length; i++) {
    const channels = tiling.pooled_channels[i];
    const total = new Float64Array(channels);
    let count = 0;
    for (const t of tiles) {
      const h = t.y1 - t.y0, w = t.x1 - t.x0;
      const features = await runOne(stats[i], feeds(ort, stats[i], read(t), h, w, pooled, tiling.pooled_inputs));
      const [, c, fh, fw] = features.dims;
      const want = [channels, Math.ceil(h * tiling.feature_scale), Math.ceil(w * tiling.feature_scale)];
      if (c !== want[0] || fh !== want[1] || fw !== want[2]) {
        throw new Error(`${tiling.stats[i]} returned features (${features.dims}) for a ${w}x${h} tile; the ` +
                        `manifest needs (1,${want})`);
      }
      const data = features.data;
      const [r0, r1] = span(t.cy0, t.cy1, t.y0, tiling.feature_scale);
      const [c0, c1] = span(t.cx0, t.cx1, t.x0, tiling.feature_scale);
      for (let ch = 0; ch < channels; ch++) {
        let sum = 0;
        for (let y = r0; y < r1; y++) {
          const row = (ch * fh + y) * fw;
          for (let x = c0; x < c1; x++) {
            const v = data[row + x];
            if (!Number.isFinite(v)) throw new Error(`${tiling.stats[i]} returned NaN/Inf features`);
            sum += v;
          }
        }
        total[ch] += sum;
      }
      count += (r1 - r0) * (c1 - c0);
      onTile();
    }
    pooled.push(Float32Array.from(total, (v) => v / Math.max(count, 1)));
  }
  return pooled;
}

// Every tile through `main` with the statistics; `write(tile, core, coreH, coreW)` gets the CHW output core.
export async function upscaleTiles(ort, read, write, tiles, tiling, main, pooled, scale, onTile = () => {}) {
  for (const t of tiles) {
    const h = t.y1 - t.y0, w = t.x1 - t.x0;
    const output = await runOne(main, feeds(ort, main, read(t), h, w, pooled, tiling.pooled_inputs));
    checkUpscaled(output, h, w, scale, tiling.main);
    const [r0, r1] = span(t.cy0, t.cy1, t.y0, scale);
    const [c0, c1] = span(t.cx0, t.cx1, t.x0, scale);
    write(t, crop(output.data, h * scale, w * scale, r0, r1, c0, c1), r1 - r0, c1 - c0);
    onTile();
  }
}

export function checkUpscaled(output, h, w, scale, engine) {
  const want = [1, 3, h * scale, w * scale];
  if (output.dims.join(',') !== want.join(',')) {
    throw new Error(`${engine} returned (${output.dims}) for a ${w}x${h} input, not the (${want}) of scale ${scale}`);
  }
  const data = output.data;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new Error(`${engine} returned NaN/Inf values: refusing that picture`);
  }
}

// Rows [r0, r1) and columns [c0, c1) of a (3, H, W) array, as a new (3, r1 - r0, c1 - c0) array.
export function crop(data, height, width, r0, r1, c0, c1) {
  const h = r1 - r0, w = c1 - c0;
  if (r0 === 0 && c0 === 0 && h === height && w === width) return data;
  const out = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < h; y++) {
      const from = (c * height + r0 + y) * width + c0;
      out.set(data.subarray(from, from + w), (c * h + y) * w);
    }
  }
  return out;
}
