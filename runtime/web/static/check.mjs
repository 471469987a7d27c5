// check.html: runtime.check in the browser. Every ONNX Runtime Web variant of the artifact on its stored
// references, then the tiling graphs in small tiles, each judged by the manifest's tolerance; the table and
// `verdict: PASS|FAIL` written into the page as text. PASS: every file fetched matches its sha256, at least one
// engine ran, and every one that ran passed.
import { artifactBytes, loadPlan, parseNpy } from './artifact.mjs';
import { compare, describeTolerance, merge, within } from './judge.mjs';
import { loadOrt } from './ort.mjs';
import { Upscaler } from './upscaler.mjs';

const report = document.getElementById('report');
const lines = [];
const show = () => { report.textContent = lines.join('\n'); };
const num = (v) => (Number.isFinite(v) ? v.toExponential(2) : 'inf');
const db = (v) => (v === Infinity ? 'inf' : v.toFixed(1));

function row(name, engine, status, result, tolerance, note = '') {
  const verdict = note ? `${status}: ${note}` : status;
  const cells = result
    ? [num(result.max), num(result.mean), db(result.psnr), result.finite ? 'yes' : 'NO', describeTolerance(tolerance)]
    : ['-', '-', '-', '-', '-'];
  return { name, engine, cells, verdict, status };
}

function table(rows) {
  const all = [['variant', 'runs on', 'max|diff|', 'mean|diff|', 'PSNR dB', 'finite', 'tolerance', 'verdict'],
    ...rows.map((r) => [r.name, r.engine, ...r.cells, r.verdict])];
  const widths = all[0].slice(0, -1).map((_, i) => Math.max(...all.map((line) => line[i].length)));
  return all.map((line) => line.slice(0, -1).map((cell, i) => cell.padEnd(widths[i])).join('  ') + '  ' + line.at(-1));
}

// Samples [start, start + n) of an (N, C, H, W) array.
const samples = (data, shape, start, n) => {
  const size = shape[1] * shape[2] * shape[3];
  return data.subarray(start * size, (start + n) * size);
};

async function checkVariant(runtime, plan, variant, pairs) {
  if (variant.skip) return row(variant.file, variant.kind, 'skip', null, null, variant.skip);
  try {
    const session = await runtime.session(await artifactBytes(plan, variant.file));
    const results = [], skipped = [];
    for (const { x, y, shape } of pairs) {
      const [n, c, h, w] = shape;
      if (variant.fixed && (h !== variant.fixed[0] || w !== variant.fixed[1])) { skipped.push(`${w}x${h}`); continue; }
      const chunk = variant.batch || n;
      if (n % chunk) throw new Error(`batch ${n} is not a multiple of the graph's fixed batch ${chunk}`);
      for (let start = 0; start < n; start += chunk) {
        const input = new runtime.ort.Tensor('float32', samples(x, shape, start, chunk).slice(), [chunk, c, h, w]);
        const output = (await session.run({ [session.inputNames[0]]: input }))[session.outputNames[0]];
        const outShape = [chunk, 3, h * plan.scale, w * plan.scale];
        const reference = samples(y, [n, 3, h * plan.scale, w * plan.scale], start, chunk);
        results.push(output.dims.join(',') === outShape.join(',') ? compare(output.data, reference, plan.peak)
          : { max: Infinity, mean: Infinity, psnr: -Infinity, finite: false });
      }
    }
    await session.release();
    if (!results.length) return row(variant.file, runtime.describe(), 'skip', null, null, `fixed input ${variant.fixed}: no reference of that size`);
    const merged = merge(results);
    const note = skipped.length ? `references ${skipped.join(', ')} skipped (fixed shape)` : '';
    return row(variant.file, runtime.describe(), within(variant.tolerance, merged) ? 'pass' : 'FAIL', merged, variant.tolerance, note);
  } catch (error) {
    return row(variant.file, runtime.describe(), 'FAIL', null, null, String(error.message || error).split('\n')[0]);
  }
}

async function checkTiled(runtime, plan, pairs) {
  const name = `tiled (${plan.tiling.main}, tile ${plan.check_tile})`;
  try {
    const upscaler = new Upscaler(runtime, plan, plan.check_tile);
    const results = [];
    for (const { x, y, shape } of pairs) {
      const [n, , h, w] = shape;
      for (let i = 0; i < n; i++) {
        const out = await upscaler.upscalePlanes(samples(x, shape, i, 1), h, w);
        results.push(compare(out, samples(y, [n, 3, h * plan.scale, w * plan.scale], i, 1), plan.peak));
      }
    }
    const merged = merge(results);
    return row(name, runtime.describe(), within(plan.tiled_tolerance, merged) ? 'pass' : 'FAIL', merged, plan.tiled_tolerance);
  } catch (error) {
    return row(name, runtime.describe(), 'FAIL', null, null, String(error.message || error).split('\n')[0]);
  }
}

async function main() {
  const plan = await loadPlan();
  const runtime = await loadOrt();
  lines.push(`${plan.model} x${plan.scale}  ${plan.artifact}`, `engine: ${plan.runtime}, ${runtime.describe()}, ` +
             `crossOriginIsolated ${crossOriginIsolated}`, ...runtime.notes.map((n) => `note: ${n}`));
  show();
  const rows = [], pairs = [];
  let fileProblems = 0;
  for (const ref of plan.references) {
    try {
      const x = parseNpy(await artifactBytes(plan, ref.input), ref.input_shape, ref.input);
      const y = parseNpy(await artifactBytes(plan, ref.output), ref.output_shape, ref.output);
      pairs.push({ x, y, shape: ref.input_shape });
    } catch (error) {
      fileProblems += 1;
      rows.push(row(ref.input, '-', 'FAIL', null, null, error.message));
    }
  }
  if (pairs.length) {
    for (const variant of plan.variants) {
      rows.push(await checkVariant(runtime, plan, variant, pairs));
      lines.push(`  ${variant.file}: ${rows.at(-1).verdict}`);
      show();
    }
    if (plan.tiling) rows.push(await checkTiled(runtime, plan, pairs));
  }
  const ran = rows.filter((r) => r.status !== 'skip');
  const passed = !fileProblems && ran.length > 0 && ran.every((r) => r.status === 'pass');
  const verdict = `verdict: ${passed ? 'PASS' : 'FAIL'}`;
  lines.splice(2 + runtime.notes.length);
  lines.push('files: every file fetched matches its sha256 in the manifest (a mismatch fails its row)', ...table(rows), verdict);
  show();
  document.getElementById('verdict').textContent = verdict;
  document.body.dataset.state = 'done';
}

main().catch((error) => {
  lines.push(`error: ${error.message}`, 'verdict: FAIL');
  show();
  document.getElementById('verdict').textContent = 'verdict: FAIL';
  document.body.dataset.state = 'done';
});
