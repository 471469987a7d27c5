// ONNX Runtime Web from this server's /vendor: the WASM build (SIMD, threads when the page is cross-origin
// isolated), or with ?ep=webgpu the WebGPU build where the browser has an adapter (else WASM, said in `note`).
const VENDOR = new URL('/vendor/', location.href).href;

async function hasWebGpu() {
  if (!navigator.gpu) return false;
  try { return Boolean(await navigator.gpu.requestAdapter()); } catch { return false; }
}

export async function loadOrt(params = new URLSearchParams(location.search)) {
  const asked = params.get('ep') || 'wasm';
  const notes = [];
  let ep = 'wasm';
  if (asked === 'webgpu') {
    if (await hasWebGpu()) ep = 'webgpu';
    else notes.push('WebGPU is not available in this browser (no navigator.gpu adapter): running on WASM');
  } else if (asked !== 'wasm') {
    notes.push(`unknown ?ep=${asked} (wasm or webgpu): running on WASM`);
  }
  const ort = await import(VENDOR + (ep === 'webgpu' ? 'ort.webgpu.min.mjs' : 'ort.wasm.min.mjs'));
  ort.env.wasm.wasmPaths = VENDOR;
  // ORT Web's own default (half the cores, at most 4), stated so the page can say what ran.
  let threads = Math.min(4, Math.ceil((navigator.hardwareConcurrency || 1) / 2));
  if (params.has('threads')) {
    const n = Number(params.get('threads'));
    if (Number.isInteger(n) && n >= 1 && n <= 64) threads = n;
    else notes.push(`?threads=${params.get('threads')} is not 1..64: using ${threads}`);
  }
  if (!crossOriginIsolated && threads > 1) {
    notes.push('the page is not cross-origin isolated (COOP/COEP headers): WASM runs one thread');
    threads = 1;
  }
  ort.env.wasm.numThreads = threads;
  // WASM in a worker keeps the tab responsive while a picture runs (?proxy=0: on the page's own thread).
  ort.env.wasm.proxy = ep === 'wasm' && params.get('proxy') !== '0';
  const describe = () => (ep === 'webgpu' ? 'webgpu' : `wasm, ${threads} thread${threads > 1 ? 's' : ''}`);
  return {
    ort, ep, threads, notes, describe,
    async session(bytes) {
      return ort.InferenceSession.create(bytes, { executionProviders: [ep], graphOptimizationLevel: 'all' });
    },
  };
}
