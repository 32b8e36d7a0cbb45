// Reference face descriptors from face-api.js itself, on tfjs's CPU backend.
//
// Usage: node descriptor.mjs CROPS.f32 COUNT [OUT.json]
//   CROPS.f32: COUNT crops of 150x150 RGB, float32 little-endian, HWC order, values 0..255
//   (exactly what face-api's toBatchTensor builds from a 150x150 image: no padding, no resize).
// Prints (or writes to OUT.json) {"backend", "versions", "descriptors": [[128 floats], ...]}.
// Each crop goes through FaceRecognitionNet.computeFaceDescriptor as its own Tensor3D input.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs');
// face-api's build for node without the native tfjs-node binding; it shares the tfjs above.
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');

const SIZE = 150;

function readCrops(path, count) {
  const bytes = readFileSync(path);
  const expected = count * SIZE * SIZE * 3 * 4;
  if (bytes.length !== expected) throw new Error(`${path}: ${bytes.length} bytes, expected ${expected}`);
  // Copy into a fresh, aligned buffer: a Buffer may be a view at any offset of a shared pool.
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const crop = SIZE * SIZE * 3;
  return Array.from({ length: count }, (_, i) => values.subarray(i * crop, (i + 1) * crop));
}

async function main() {
  const [cropsPath, countArg, outPath] = process.argv.slice(2);
  const count = Number.parseInt(countArg, 10);
  if (!cropsPath || !(count > 0)) throw new Error('usage: node descriptor.mjs CROPS.f32 COUNT [OUT.json]');
  await tf.setBackend('cpu');
  await tf.ready();
  const packageDir = dirname(require.resolve('@vladmandic/face-api/package.json'));
  await faceapi.nets.faceRecognitionNet.loadFromDisk(join(packageDir, 'model'));
  const descriptors = [];
  for (const crop of readCrops(cropsPath, count)) {
    const input = tf.tensor3d(crop, [SIZE, SIZE, 3], 'float32');
    descriptors.push(Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(input)));
    input.dispose();
  }
  const result = { backend: tf.getBackend(), versions: { faceapi: faceapi.version, tfjs: tf.version_core }, descriptors };
  const text = JSON.stringify(result);
  if (outPath) writeFileSync(outPath, text);
  else process.stdout.write(`${text}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
