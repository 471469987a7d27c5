// bench.html: the page's engine on one 640x360 input (-> 1280x720 at x2), warm-up runs, then `rounds` timed
// runs; prints median and p90 ms, as runtime.bench reports them natively.
import { artifactBytes, loadPlan } from './artifact.mjs';
import { loadOrt } from './ort.mjs';

const report = document.getElementById('report');
const params = new URLSearchParams(location.search);

function count(name, fallback, low, high) {
  const n = Number(params.get(name) ?? fallback);
  return Number.isInteger(n) && n >= low && n <= high ? n : fallback;
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function main() {
  const plan = await loadPlan();
  const runtime = await loadOrt(params);
  const rounds = count('rounds', 20, 1, 1000), warmup = count('warmup', 3, 0, 100);
  const [h, w] = plan.bench_shape;
  // ?variant=FILE times another ORT Web variant of the artifact (a fixed-shape one only at its own shape).
  const file = params.get('variant') || plan.engine.file;
  const variant = plan.variants.find((v) => v.file === file);
  if (!variant || variant.skip) throw new Error(`?variant=${file}: not an ONNX Runtime Web variant of this artifact`);
  if (variant.fixed && (variant.fixed[0] !== h || variant.fixed[1] !== w)) throw new Error(`${file} takes ${variant.fixed[1]}x${variant.fixed[0]} only`);
  const session = await runtime.session(await artifactBytes(plan, file));
  // Mid-range pseudo-random pixels, the same every run (an LCG: no Math.random).
  const data = new Float32Array(3 * h * w);
  let state = 12345;
  for (let i = 0; i < data.length; i++) { state = (state * 1103515245 + 12345) >>> 0; data[i] = 0.25 + 0.5 * (state / 2 ** 32); }
  // A fresh tensor per run, made before the clock starts: a proxy worker takes the buffer it is given.
  const feed = () => ({ [session.inputNames[0]]: new runtime.ort.Tensor('float32', data.slice(), [1, 3, h, w]) });
  for (let i = 0; i < warmup; i++) await session.run(feed());
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const input = feed();
    const start = performance.now();
    await session.run(input);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const median = times.length % 2 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  report.textContent = [
    `${plan.artifact}: ${file}, ${w}x${h} -> ${w * plan.scale}x${h * plan.scale}, batch 1`,
    `engine: ${plan.runtime}, ${runtime.describe()}, crossOriginIsolated ${crossOriginIsolated}, proxy worker ${runtime.ort.env.wasm.proxy}`,
    ...runtime.notes.map((n) => `note: ${n}`),
    `${warmup} warm-up, ${rounds} rounds; p90 ms: ${quantile(times, 0.9).toFixed(2)}`,
    `median ms: ${median.toFixed(2)}`,
  ].join('\n');
  document.body.dataset.state = 'done';
}

main().catch((error) => {
  report.textContent = `error: ${error.message}`;
  document.body.dataset.state = 'done';
});
