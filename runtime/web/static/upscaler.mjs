// The page's Upscaler, as runtime/upscaler.py runs a picture: padded (edge) to the tiling's align, whole on the
// engine up to the tile budget, above it tiled through the tiling graphs with whole-image statistics; integer
// output clipped and rounded exactly as numpy does it there (float32: clip * 255 + 0.5, truncated).
import { artifactBytes } from './artifact.mjs';
import { checkUpscaled, planTiles, pooledStatistics, upscaleTiles } from './tiling.mjs';

const INV255 = Math.fround(1 / 255);

export class Upscaler {
  constructor(runtime, plan, tile = plan.tile) {
    this.runtime = runtime;
    this.plan = plan;
    this.tile = tile;
    this.scale = plan.scale;
    this.align = plan.tiling ? plan.tiling.align : 1;
    this.engine = null;
    this.graphs = null;
  }

  async session(rel) {
    return this.runtime.session(await artifactBytes(this.plan, rel));
  }

  async loadEngine() {
    this.engine ??= await this.session(this.plan.engine.file);
    return this.engine;
  }

  async loadTiling() {
    if (!this.plan.tiling) throw new Error('the artifact has no tiling graphs: pictures above the tile size cannot run');
    if (!this.graphs) {
      const stats = [];
      for (const rel of this.plan.tiling.stats) stats.push(await this.session(rel));
      this.graphs = { stats, main: await this.session(this.plan.tiling.main) };
    }
    return this.graphs;
  }

  // A side padded up to a multiple of the tiling's align (edge replicated: what the network does itself).
  padded(n) {
    return n + ((this.align - (n % this.align)) % this.align);
  }

  // Tiles for an align-padded height x width, or null when it runs whole (runtime/upscaler.py `plan`).
  tiles(height, width) {
    const fixed = this.plan.engine.fixed;
    const fits = this.tile === 0 || (height <= this.tile && width <= this.tile);
    if (fits && (!fixed || (height === fixed[0] && width === fixed[1]))) return null;
    const tiling = this.plan.tiling;
    if (!tiling) throw new Error(`a ${width}x${height} picture needs tiling, and this artifact has no tiling graphs`);
    return planTiles(height, width, this.tile || Math.max(height, width), tiling.halo, tiling.align);
  }

  // One run of an align-padded height x width image given by `read(region)` -> Float32Array (3, h, w);
  // `write(region, core, coreH, coreW)` gets each CHW output core. `onProgress(done, total)` between engine calls.
  async run(read, write, height, width, onProgress = () => {}) {
    const tiles = this.tiles(height, width);
    const { ort } = this.runtime;
    if (tiles === null) {
      const engine = await this.loadEngine();
      const whole = { y0: 0, y1: height, x0: 0, x1: width, cy0: 0, cy1: height, cx0: 0, cx1: width };
      const result = await engine.run({ [engine.inputNames[0]]: new ort.Tensor('float32', read(whole), [1, 3, height, width]) });
      const output = result[engine.outputNames[0]];
      checkUpscaled(output, height, width, this.scale, this.plan.engine.file);
      write(whole, output.data, height * this.scale, width * this.scale);
      onProgress(1, 1);
      return;
    }
    const { stats, main } = await this.loadTiling();
    const total = tiles.length * (stats.length + 1);
    let done = 0;
    const step = () => onProgress(++done, total);
    const pooled = await pooledStatistics(ort, read, tiles, this.plan.tiling, stats, step);
    await upscaleTiles(ort, read, write, tiles, this.plan.tiling, main, pooled, this.scale, step);
  }

  // float32 (3, H, W) planes in [0, 1] -> float32 (3, sH, sW), the engine's output unclipped (check.html).
  async upscalePlanes(planes, height, width) {
    const ph = this.padded(height), pw = this.padded(width);
    const s = this.scale, oh = height * s, ow = width * s;
    const out = new Float32Array(3 * oh * ow);
    const read = (t) => {
      const h = t.y1 - t.y0, w = t.x1 - t.x0, region = new Float32Array(3 * h * w);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < h; y++) {
          const sy = Math.min(t.y0 + y, height - 1);
          for (let x = 0; x < w; x++) region[(c * h + y) * w + x] = planes[(c * height + sy) * width + Math.min(t.x0 + x, width - 1)];
        }
      }
      return region;
    };
    const write = (t, core, ch, cw) => {
      const y0 = t.cy0 * s, x0 = t.cx0 * s, h = Math.min(ch, oh - y0), w = Math.min(cw, ow - x0);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < h; y++) out.set(core.subarray((c * ch + y) * cw, (c * ch + y) * cw + w), (c * oh + y0 + y) * ow + x0);
      }
    };
    await this.run(read, write, ph, pw);
    return out;
  }

  // RGBA ImageData-like {data, width, height} -> {data (RGBA, alpha 255), width, height} upscaled.
  async upscaleRgba(image, onProgress) {
    const { width, height, data } = image;
    const ph = this.padded(height), pw = this.padded(width);
    const s = this.scale, oh = height * s, ow = width * s;
    const out = new Uint8ClampedArray(4 * oh * ow);
    const read = (t) => {
      const h = t.y1 - t.y0, w = t.x1 - t.x0, plane = h * w, region = new Float32Array(3 * plane);
      for (let y = 0; y < h; y++) {
        const row = Math.min(t.y0 + y, height - 1) * width;
        for (let x = 0; x < w; x++) {
          const p = 4 * (row + Math.min(t.x0 + x, width - 1)), i = y * w + x;
          region[i] = data[p] * INV255;
          region[plane + i] = data[p + 1] * INV255;
          region[2 * plane + i] = data[p + 2] * INV255;
        }
      }
      return region;
    };
    const write = (t, core, ch, cw) => {
      const y0 = t.cy0 * s, x0 = t.cx0 * s, h = Math.min(ch, oh - y0), w = Math.min(cw, ow - x0), plane = ch * cw;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = y * cw + x, p = 4 * ((y0 + y) * ow + x0 + x);
          for (let c = 0; c < 3; c++) {
            const v = Math.min(1, Math.max(0, core[c * plane + i]));
            out[p + c] = Math.trunc(Math.fround(Math.fround(v * 255) + 0.5));
          }
          out[p + 3] = 255;
        }
      }
    };
    await this.run(read, write, ph, pw, onProgress);
    return { data: out, width: ow, height: oh };
  }
}

