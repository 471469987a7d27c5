// A chosen or dropped file -> RGBA pixels, refusing in plain words (never a hang): a file that is not an image,
// one above the page's pixel limit (checked from its header before a pixel is decoded), one that fails to decode.
const SIGNATURES = [
  ['PNG', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['JPEG', [0xff, 0xd8, 0xff]],
  ['GIF', [0x47, 0x49, 0x46, 0x38]],
  ['BMP', [0x42, 0x4d]],
  ['WebP', [0x52, 0x49, 0x46, 0x46, null, null, null, null, 0x57, 0x45, 0x42, 0x50]],
  ['AVIF', [null, null, null, null, 0x66, 0x74, 0x79, 0x70, 0x61, 0x76, 0x69, 0x66]],
];
const DECODE_TIMEOUT_MS = 20000;

export class PictureError extends Error {}

function sniff(bytes) {
  for (const [name, signature] of SIGNATURES) {
    if (bytes.length >= signature.length && signature.every((b, i) => b === null || bytes[i] === b)) return name;
  }
  return null;
}

function megapixels(n) {
  return `${(n / 1e6).toFixed(1)} MP`;
}

// The size the browser reads from the file's header: an <img> learns it without decoding the pixels.
function headerSize(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    const timer = setTimeout(() => reject(new Error('timed out reading its size')), DECODE_TIMEOUT_MS);
    img.onload = () => { clearTimeout(timer); resolve([img.naturalWidth, img.naturalHeight]); };
    img.onerror = () => { clearTimeout(timer); reject(new Error('the browser cannot read it as an image')); };
    img.src = url;
  });
}

async function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out`)), DECODE_TIMEOUT_MS); });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(timer); }
}

// {name, width, height, data: RGBA Uint8ClampedArray, hasAlpha, url} of `file`, or PictureError.
export async function readPicture(file, plan) {
  const name = file.name || 'the file';
  if (!file.size) throw new PictureError(`${name} is empty: not an image`);
  const kind = sniff(new Uint8Array(await file.slice(0, 16).arrayBuffer()));
  if (!kind) {
    throw new PictureError(`${name} is not an image: its first bytes are no PNG, JPEG, WebP, GIF, BMP or AVIF ` +
                           'signature');
  }
  const url = URL.createObjectURL(file);
  let keep = false;
  try {
    let width, height;
    try {
      [width, height] = await headerSize(url);
    } catch (error) {
      throw new PictureError(`${name} looks like a ${kind} file but is corrupt: ${error.message}`);
    }
    const pixels = width * height, out = pixels * plan.scale * plan.scale;
    if (!(width >= 1 && height >= 1)) throw new PictureError(`${name}: a ${width}x${height} ${kind} has no pixels`);
    if (pixels > plan.max_input_pixels || out > plan.max_output_pixels) {
      throw new PictureError(`${name} is ${width}x${height} (${megapixels(pixels)}), above this page's limit of ` +
                             `${megapixels(plan.max_input_pixels)} (the x${plan.scale} output may be at most ` +
                             `${megapixels(plan.max_output_pixels)}): downscale it, or use python -m runtime.infer`);
    }
    let bitmap;
    try {
      bitmap = await withTimeout(createImageBitmap(file, { premultiplyAlpha: 'none', colorSpaceConversion: 'none' }),
                                 'decoding');
    } catch (error) {
      throw new PictureError(`${name} looks like a ${kind} file but cannot be decoded (corrupt or truncated): ` +
                             `${error.message}`);
    }
    if (bitmap.width !== width || bitmap.height !== height) {
      throw new PictureError(`${name}: its header says ${width}x${height}, its pixels ${bitmap.width}x${bitmap.height}`);
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    const { data } = context.getImageData(0, 0, width, height);
    let hasAlpha = false;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 255) { hasAlpha = true; break; }
    keep = true;
    return { name, kind, width, height, data, hasAlpha, url };
  } finally {
    if (!keep) URL.revokeObjectURL(url);
  }
}

// The alpha of `picture` resized to width x height by the canvas's high-quality filter (alpha is a mask, not
// a photo: runtime/upscaler.py resizes it bicubically too), written into the RGBA `out`.
export function resizeAlpha(picture, out, width, height) {
  const source = new OffscreenCanvas(picture.width, picture.height);
  const mask = new ImageData(picture.width, picture.height);
  for (let i = 0; i < picture.data.length; i += 4) {
    const a = picture.data[i + 3];
    mask.data[i] = a; mask.data[i + 1] = a; mask.data[i + 2] = a; mask.data[i + 3] = 255;
  }
  source.getContext('2d').putImageData(mask, 0, 0);
  const target = new OffscreenCanvas(width, height);
  const context = target.getContext('2d', { willReadFrequently: true });
  context.imageSmoothingQuality = 'high';
  context.drawImage(source, 0, 0, width, height);
  const resized = context.getImageData(0, 0, width, height).data;
  for (let i = 0; i < out.length; i += 4) out[i + 3] = resized[i];
}
