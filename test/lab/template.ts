// The lab's config templates (etcd.yml, the anchors' files) are the files a user of each tool would
// write, with {{name}} fields for the lab's addresses and paths.

/** Replaces every {{name}}; a field the template uses but `values` lacks is an error, not an empty string. */
export function fillTemplate(template: string, values: Readonly<Record<string, string | number>>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`template field {{${name}}} has no value`);
    return String(v);
  });
}
