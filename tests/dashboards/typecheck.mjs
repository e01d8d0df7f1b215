// Type-check every dashboard in dashboards/ against @grafana/schema: the dashboard as a whole
// (Dashboard, with InfluxQL annotation queries), and each panel's options and custom field
// config against its panel plugin's types (timeseries, stat, state-timeline, table). The JSON
// is written into TypeScript files as object literals, so that misspelt or unknown keys fail
// (excess-property checks), then `tsc --noEmit --strict` runs over them.
import { readFileSync, readdirSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dashboardsDir = join(here, "..", "..", "dashboards");
const out = join(here, "build");
rmSync(out, { recursive: true, force: true });
mkdirSync(out);

const panelTypes = {
  timeseries: "TimeSeriesPanelCfg",
  stat: "StatPanelCfg",
  "state-timeline": "StateTimelinePanelCfg",
  table: "TablePanelCfg",
};
const pkgDir = { TimeSeriesPanelCfg: "timeseries", StatPanelCfg: "stat", StateTimelinePanelCfg: "statetimeline", TablePanelCfg: "table" };
const hasFieldConfig = { TimeSeriesPanelCfg: true, StatPanelCfg: false, StateTimelinePanelCfg: true, TablePanelCfg: true };

const files = readdirSync(dashboardsDir).filter((f) => f.endsWith(".json")).sort();
if (files.length === 0) {
  console.error("no dashboards in " + dashboardsDir);
  process.exit(1);
}
const sources = [];
let panels = 0;
for (const file of files) {
  const dashboard = JSON.parse(readFileSync(join(dashboardsDir, file), "utf8"));
  const lines = [
    'import type { Dashboard, AnnotationQuery, DataQuery } from "@grafana/schema";',
    'import type { AsJson } from "../as-json.js";',
  ];
  for (const [cfg, dir] of Object.entries(pkgDir)) {
    lines.push(`import type * as ${cfg} from "@grafana/schema/dist/esm/raw/composable/${dir}/panelcfg/x/${cfg}_types.gen";`);
  }
  lines.push(
    "interface InfluxQuery extends DataQuery { query: string; rawQuery: boolean; resultFormat: 'time_series' | 'table' | 'logs'; alias?: string }",
    "type BusbarDashboard = Omit<Dashboard, 'annotations'> & { annotations?: { list?: AnnotationQuery<InfluxQuery>[] } };",
    `export const dashboard: AsJson<BusbarDashboard> = ${JSON.stringify(dashboard, null, 2)};`,
  );
  for (const panel of dashboard.panels ?? []) {
    if (panel.type === "row") continue;
    const cfg = panelTypes[panel.type];
    if (!cfg) {
      console.error(`${file}: panel ${panel.id} has type ${panel.type}, which this check does not know`);
      process.exit(1);
    }
    panels += 1;
    lines.push(`export const panel${panel.id}Options: AsJson<${cfg}.Options> = ${JSON.stringify(panel.options ?? {})};`);
    if (hasFieldConfig[cfg]) {
      lines.push(`export const panel${panel.id}Custom: AsJson<${cfg}.FieldConfig> = ${JSON.stringify(panel.fieldConfig?.defaults?.custom ?? {})};`);
    }
    for (const t of panel.targets ?? []) {
      lines.push(`export const panel${panel.id}${t.refId}: AsJson<InfluxQuery> = ${JSON.stringify(t)};`);
    }
  }
  const ts = join(out, file.replace(/\.json$/, ".ts"));
  writeFileSync(ts, lines.join("\n") + "\n");
  sources.push(ts);
}
writeFileSync(
  join(out, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext", skipLibCheck: true },
    files: sources.map((s) => s.slice(out.length + 1)),
  }),
);
try {
  execFileSync(join(here, "node_modules", ".bin", "tsc"), ["-p", join(out, "tsconfig.json")], { stdio: "inherit" });
} catch {
  console.error(`dashboards: type errors (the TypeScript sources are in ${out})`);
  process.exit(1);
}
console.log(`dashboards: ${files.length} dashboards, ${panels} panels type-check against @grafana/schema`);
