/** A line chart of the last values of one series (null: no sample), drawn as SVG. */
export default function Chart({ title, values, unit, digits = 1 }) {
  const width = 300;
  const height = 80;
  const known = values.filter((v) => v != null);
  const max = known.length ? Math.max(...known) : 0;
  const top = max > 0 ? max * 1.15 : 1;
  const step = values.length > 1 ? width / (values.length - 1) : width;
  const segments = [];
  let current = [];
  values.forEach((v, i) => {
    if (v == null) {
      if (current.length) segments.push(current);
      current = [];
    } else {
      current.push(`${(i * step).toFixed(1)},${(height - (v / top) * height).toFixed(1)}`);
    }
  });
  if (current.length) segments.push(current);
  const last = known.length ? known[known.length - 1] : null;
  const label = `${title}: ${last == null ? "no data yet" : `${last.toFixed(digits)} ${unit}`} (peak ${max.toFixed(digits)} ${unit})`;
  return (
    <figure className="chart" data-peak={max} data-samples={values.length}>
      <figcaption>
        <span>{title}</span>
        <strong>{last == null ? "–" : `${last.toFixed(digits)} ${unit}`}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} preserveAspectRatio="none" role="img" aria-label={label}>
        <line x1="0" y1={height - 0.5} x2={width} y2={height - 0.5} className="axis" />
        {segments.map((points, i) =>
          points.length === 1 ? (
            <circle key={i} cx={points[0].split(",")[0]} cy={points[0].split(",")[1]} r="2" />
          ) : (
            <polyline key={i} points={points.join(" ")} />
          ),
        )}
      </svg>
      <small>peak {max.toFixed(digits)} {unit}</small>
    </figure>
  );
}
