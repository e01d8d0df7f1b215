// The JSON form of a schema type: @grafana/schema declares some fields as TypeScript string
// enums (ThresholdsMode, MappingType, ...), which a JSON file spells as their string values.
// AsJson<T> turns each string enum into the union of its values and leaves everything else,
// excess-property checks included, as strict as the original.
export type AsJson<T> = T extends string
  ? `${T}`
  : T extends ReadonlyArray<infer U>
    ? AsJson<U>[]
    : T extends object
      ? { [K in keyof T]: AsJson<T[K]> }
      : T;
