import { useMemo, useState } from "react";
import { Background, Controls, Handle, Position, ReactFlow, ReactFlowProvider, useReactFlow } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import Inspector from "./Inspector.jsx";
import { addStep, connect, edgesOf, layout, readSteps, removeStep } from "./graph.js";

const PALETTE = [
  { kind: "model", label: "Model step" },
  { kind: "tool", label: "Tool step" },
  { kind: "map", label: "Map step" },
];

function StepNode({ data }) {
  const { name, step, problems, status } = data;
  const kind = step.tool ? `tool ${step.tool}` : step.map ? `map · ${step.model ?? ""}` : step.model ?? "model";
  return (
    <div className={`flow-step ${problems ? "invalid" : ""} ${status ?? ""}`}>
      <Handle type="target" position={Position.Left} aria-label={`Input of ${name}`} />
      <strong>{name}</strong>
      <small>{kind}</small>
      {problems && (
        <ul className="problems" role="alert">
          {problems.map((p, i) => (
            <li key={i}>{p}</li>
          ))}
        </ul>
      )}
      <Handle type="source" position={Position.Right} aria-label={`Output of ${name}`} />
    </div>
  );
}

const NODE_TYPES = { step: StepNode };

function Canvas({ text, setText, models, problems, statuses }) {
  const { steps, error } = useMemo(() => readSteps(text), [text]);
  const [moved, setMoved] = useState({});
  const [selected, setSelected] = useState(null);
  const flow = useReactFlow();
  const placed = useMemo(() => layout(steps), [steps]);

  const nodes = Object.entries(steps).map(([name, step]) => ({
    id: name,
    type: "step",
    position: moved[name] ?? placed[name],
    selected: name === selected,
    ariaLabel: `Node ${name}`,
    data: { name, step: step ?? {}, problems: problems[name], status: statuses?.[name] },
  }));
  const edges = edgesOf(steps);

  const onNodesChange = (changes) => {
    for (const change of changes) {
      if (change.type === "position" && change.position) setMoved((m) => ({ ...m, [change.id]: change.position }));
      if (change.type === "select" && change.selected) setSelected(change.id);
    }
  };

  const onDrop = (event) => {
    event.preventDefault();
    const kind = event.dataTransfer.getData("application/x-hearth-step");
    if (!kind) return;
    const position = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
    const [next, name] = addStep(text, kind, models[0] ?? "");
    setMoved((m) => ({ ...m, [name]: position }));
    setSelected(name);
    setText(next);
  };

  return (
    <div className="builder">
      <div className="palette" aria-label="Step palette">
        {PALETTE.map((p) => (
          <div
            key={p.kind}
            className="palette-item"
            role="button"
            tabIndex={0}
            draggable
            aria-label={`Drag a ${p.label.toLowerCase()}`}
            onDragStart={(e) => {
              e.dataTransfer.setData("application/x-hearth-step", p.kind);
              e.dataTransfer.effectAllowed = "move";
            }}
            onKeyDown={(e) => {
              // Keyboard users add the step without dragging.
              if (e.key !== "Enter" && e.key !== " ") return;
              e.preventDefault();
              const [next, name] = addStep(text, p.kind, models[0] ?? "");
              setSelected(name);
              setText(next);
            }}
          >
            {p.label}
          </div>
        ))}
        {error && <p role="alert">YAML: {error}</p>}
      </div>
      <div
        className="canvas"
        aria-label="Workflow graph"
        onDragOver={(e) => {
          e.preventDefault();
          e.dataTransfer.dropEffect = "move";
        }}
        onDrop={onDrop}
      >
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={NODE_TYPES}
          onNodesChange={onNodesChange}
          onConnect={({ source, target }) => setText(connect(text, source, target))}
          onPaneClick={() => setSelected(null)}
          deleteKeyCode={null}
          fitView
          fitViewOptions={{ maxZoom: 1 }}
          proOptions={{ hideAttribution: true }}
        >
          <Background />
          <Controls />
        </ReactFlow>
      </div>
      <div className="inspector-pane">
        <Inspector
          name={selected}
          step={selected ? steps[selected] : null}
          text={text}
          setText={setText}
          models={models}
          onRemove={() => {
            setText(removeStep(text, selected));
            setSelected(null);
          }}
        />
      </div>
    </div>
  );
}

/** The drag-and-drop builder of one workflow's YAML (`text`). */
export default function Builder(props) {
  return (
    <ReactFlowProvider>
      <Canvas {...props} />
    </ReactFlowProvider>
  );
}
