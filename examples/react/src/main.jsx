import { useCallback, useEffect, useRef, useState } from "react";
import { createRoot } from "react-dom/client";
import init, { Uploader } from "s3-direct-upload";
import "s3-direct-upload/element"; // defines <s3-upload>

await init(); // loads the .wasm; once, before the first Uploader

/** The widget in a component: its events reach React through a ref. */
function UploadWidget({ onStored }) {
  const widget = useRef(null);
  useEffect(() => {
    const element = widget.current;
    const done = (e) => onStored(e.detail.result.key);
    element.addEventListener("upload-done", done);
    return () => element.removeEventListener("upload-done", done);
  }, [onStored]);
  return <s3-upload ref={widget} backend="/api/uploads" multiple directory />;
}

/** The Uploader in a hook: one per component, freed when it unmounts. */
function useUpload(options) {
  const uploader = useRef(null);
  const [progress, setProgress] = useState(0);
  const [status, setStatus] = useState("");
  useEffect(() => {
    uploader.current = new Uploader(options);
    return () => uploader.current.free();
  }, []); // eslint-disable-line react-hooks/exhaustive-deps
  const upload = useCallback(async (file) => {
    setStatus("uploading…");
    const onProgress = (p) => setProgress(p.total ? p.loaded / p.total : 1); // a 0-byte file has total 0
    try {
      const { key } = await uploader.current.upload(file, { onProgress }).done;
      setStatus(`stored as ${key}`);
    } catch (err) {
      setStatus(`failed (${err.code}): ${err.message}`);
    }
  }, []);
  return { upload, progress, status };
}

function HookUploader() {
  const { upload, progress, status } = useUpload({ backend: "/api/uploads", worker: true });
  return (
    <p>
      <input type="file" id="picker" onChange={(e) => e.target.files[0] && upload(e.target.files[0])} />
      <progress id="bar" max="1" value={progress} />
      <output id="result">{status}</output>
    </p>
  );
}

function App() {
  const [stored, setStored] = useState([]);
  const onStored = useCallback((key) => setStored((keys) => [...keys, key]), []);
  return (
    <main>
      <h1>s3-direct-upload + React</h1>
      <h2>The widget</h2>
      <UploadWidget onStored={onStored} />
      <p id="stored">{stored.length} stored by the widget</p>
      <h2>The Uploader in a hook</h2>
      <HookUploader />
    </main>
  );
}

createRoot(document.getElementById("root")).render(<App />);
