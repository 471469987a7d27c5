// The upscaling page: a dropped or chosen picture through the Upscaler, before/after with a slider, the PNG offered.
import { loadPlan } from './artifact.mjs';
import { loadOrt } from './ort.mjs';
import { PictureError, readPicture, resizeAlpha } from './picture.mjs';
import { Upscaler } from './upscaler.mjs';

const $ = (id) => document.getElementById(id);
let upscaler = null, busy = false, urls = [];

function say(text) { $('status').textContent = text; }
function refuse(text) { const m = $('message'); m.textContent = text; m.hidden = false; }

async function toPng(image) {
  const canvas = new OffscreenCanvas(image.width, image.height);
  canvas.getContext('2d').putImageData(new ImageData(image.data, image.width, image.height), 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

async function upscale(file) {
  if (busy) { refuse('a picture is still running: wait for it to finish'); return; }
  busy = true;
  $('message').hidden = true;
  $('result').hidden = true;
  document.body.dataset.state = 'running';
  urls.forEach((u) => URL.revokeObjectURL(u));
  urls = [];
  try {
    const picture = await readPicture(file, upscaler.plan);
    urls.push(picture.url);
    say(`${picture.name}: ${picture.width}x${picture.height} ${picture.kind}, upscaling x${upscaler.scale} ...`);
    const progress = $('progress');
    progress.hidden = false;
    const started = performance.now();
    const out = await upscaler.upscaleRgba(picture, (done, total) => { progress.value = done / total; });
    if (picture.hasAlpha) resizeAlpha(picture, out.data, out.width, out.height);
    const png = await toPng(out);
    const seconds = (performance.now() - started) / 1000;
    const href = URL.createObjectURL(png);
    urls.push(href);
    $('before').src = picture.url;
    $('after').src = href;
    const link = $('download');
    link.href = href;
    link.download = `${picture.name.replace(/\.[^.]*$/, '')}_x${upscaler.scale}.png`;
    $('result').hidden = false;
    progress.hidden = true;
    const tiled = upscaler.tiles(upscaler.padded(picture.height), upscaler.padded(picture.width));
    say(`${picture.name}: ${picture.width}x${picture.height} -> ${out.width}x${out.height} in ${seconds.toFixed(1)} s ` +
        `(${tiled ? `${tiled.length} tiles, whole-image statistics first` : 'whole'}, ${upscaler.runtime.describe()})`);
    document.body.dataset.state = 'done';
  } catch (error) {
    $('progress').hidden = true;
    say('');
    refuse(error instanceof PictureError ? error.message : `upscaling failed: ${error.message}`);
    document.body.dataset.state = 'refused';
  } finally {
    busy = false;
  }
}

function setSlider() {
  $('after').style.clipPath = `inset(0 0 0 ${$('slider').value}%)`;
}

async function start() {
  try {
    const plan = await loadPlan();
    const runtime = await loadOrt();
    upscaler = new Upscaler(runtime, plan);
    await upscaler.loadEngine();
    $('about').textContent = `${plan.artifact}: ${plan.model} x${plan.scale}, ${plan.engine.file} on ${plan.runtime} ` +
      `(${runtime.describe()}); any size, tiled above ${plan.tile} px a side. ${runtime.notes.join('; ')}`;
    document.body.dataset.state = 'ready';
  } catch (error) {
    refuse(`cannot start: ${error.message}`);
    document.body.dataset.state = 'failed';
    return;
  }
  $('file').addEventListener('change', (event) => { if (event.target.files[0]) upscale(event.target.files[0]); });
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer.files[0];
    if (file) upscale(file); else refuse('nothing to upscale: drop an image file');
  });
  $('slider').addEventListener('input', setSlider);
  setSlider();
}

start();
