package io.vringj.perf.regress;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The figures a run is compared with, committed in the repository ({@code perf/baseline/quick.json},
 * {@code perf/baseline/full.json}), one entry per machine: a run is judged only against the entry
 * of the same machine ({@link Machine#sameAs}); {@code --update-baseline} replaces that entry or
 * adds one beside the others.
 *
 * <pre>
 * { "profile": "quick",
 *   "machines": [
 *     { "machine": { "cpu": "AMD EPYC", "cores": 2, "jdk": "25.0.3+9-LTS", "kernel": "Linux 6.18.44" },
 *       "recorded": "2026-...Z", "note": "...",
 *       "ratios": { "q1.vringj-vs-agrona.64B.batch1": { "median": 1.10, "q1": 1.05, "q3": 1.13, "rounds": 5 }, ... },
 *       "allocation": { "RingThroughputBenchmark.vringj[batch=1, payloadBytes=64]": 0.001, ... } },
 *     ... ] }
 * </pre>
 *
 * A file in the older form (one machine as a line of text, each ratio a bare number) is read as
 * one entry whose ratios have no recorded spread; it is written back in the form above.
 *
 * @param profile the profile every entry was measured with
 * @param entries one per machine, in the order they were added
 */
public record Baseline(Profile profile, List<Entry> entries) {

    /**
     * The figures of one machine.
     *
     * @param machine where they were measured
     * @param recorded when, ISO-8601
     * @param note free text (e.g. what else was running)
     * @param ratios each ratio's median and spread over the rounds, by {@link RatioSpec#id()}
     * @param allocation B/op by {@link Checks#allocationKey(BenchmarkResult)}
     */
    public record Entry(Machine machine, String recorded, String note, Map<String, Spread> ratios,
                        Map<String, Double> allocation) {
        /**
         * @param machine where
         * @param recorded when
         * @param note free text
         * @param ratios ratios by id
         * @param allocation B/op by key
         */
        public Entry {
            Objects.requireNonNull(machine, "machine");
            recorded = Objects.requireNonNullElse(recorded, "");
            note = Objects.requireNonNullElse(note, "");
            ratios = Map.copyOf(ratios);
            allocation = Map.copyOf(allocation);
        }
    }

    /**
     * @param profile the profile
     * @param entries the machines' entries
     */
    public Baseline {
        Objects.requireNonNull(profile, "profile");
        entries = List.copyOf(entries);
    }

    /**
     * @param machine the machine a run measured
     * @return the entry recorded on the same machine, if any
     */
    public Optional<Entry> entryFor(Machine machine) {
        return entries.stream().filter(e -> e.machine().sameAs(machine)).findFirst();
    }

    /**
     * @param entry a machine's new figures
     * @return this baseline with {@code entry} in place of the same machine's entry, or added after the others
     */
    public Baseline with(Entry entry) {
        List<Entry> next = new ArrayList<>(entries);
        for (int i = 0; i < next.size(); i++) {
            if (next.get(i).machine().sameAs(entry.machine())) {
                next.set(i, entry);
                return new Baseline(profile, next);
            }
        }
        next.add(entry);
        return new Baseline(profile, next);
    }

    /**
     * @param file a baseline file, in either form
     * @return its contents
     * @throws IOException if it cannot be read
     * @throws IllegalArgumentException if it is not a baseline (the message names the file and the field)
     */
    public static Baseline read(Path file) throws IOException {
        JsonElement root;
        try {
            root = JsonParser.parseString(Files.readString(file));
        } catch (JsonParseException e) {
            throw new IllegalArgumentException("baseline " + file + " is not JSON: " + e.getMessage(), e);
        }
        if (!root.isJsonObject()) {
            throw new IllegalArgumentException("baseline " + file + " must be a JSON object");
        }
        JsonObject o = root.getAsJsonObject();
        String profileName = text(o, "profile");
        Profile profile;
        try {
            profile = Profile.valueOf(profileName.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("baseline " + file + " has profile \"" + profileName
                + "\"; it must be quick or full", e);
        }
        if (!o.has("machines")) {
            return new Baseline(profile, List.of(legacyEntry(o, file)));
        }
        if (!o.get("machines").isJsonArray()) {
            throw new IllegalArgumentException("baseline " + file + ": \"machines\" must be an array of entries");
        }
        List<Entry> entries = new ArrayList<>();
        JsonArray machines = o.getAsJsonArray("machines");
        for (int i = 0; i < machines.size(); i++) {
            String where = "baseline " + file + " machines[" + i + "]";
            if (!machines.get(i).isJsonObject()) {
                throw new IllegalArgumentException(where + " must be an object");
            }
            JsonObject e = machines.get(i).getAsJsonObject();
            entries.add(new Entry(machine(e, where), text(e, "recorded"), text(e, "note"), spreads(e, where),
                numbers(e, "allocation", where)));
        }
        return new Baseline(profile, entries);
    }

    /** The older form: one machine described in a line of text, ratios as bare numbers. */
    private static Entry legacyEntry(JsonObject o, Path file) {
        String where = "baseline " + file;
        Machine machine;
        try {
            machine = Machine.parseLegacy(text(o, "machine"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + ": " + e.getMessage(), e);
        }
        return new Entry(machine, text(o, "recorded"), text(o, "note"), spreads(o, where), numbers(o, "allocation", where));
    }

    private static Machine machine(JsonObject e, String where) {
        JsonElement m = e.get("machine");
        if (m == null || !m.isJsonObject()) {
            throw new IllegalArgumentException(where + " has no \"machine\" object (cpu, cores, jdk, kernel)");
        }
        JsonObject mo = m.getAsJsonObject();
        int cores;
        try {
            cores = mo.get("cores").getAsInt();
        } catch (RuntimeException ex) {
            throw new IllegalArgumentException(where + ": machine.cores is " + mo.get("cores") + ", not a count", ex);
        }
        try {
            return new Machine(text(mo, "cpu"), cores, text(mo, "jdk"), text(mo, "kernel"));
        } catch (IllegalArgumentException ex) {
            throw new IllegalArgumentException(where + ": " + ex.getMessage(), ex);
        }
    }

    private static String text(JsonObject o, String field) {
        JsonElement e = o.get(field);
        return e == null || e.isJsonNull() ? "" : e.getAsString();
    }

    private static Map<String, Spread> spreads(JsonObject o, String where) {
        Map<String, Spread> map = new TreeMap<>();
        JsonElement e = o.get("ratios");
        if (e == null) {
            return map;
        }
        if (!e.isJsonObject()) {
            throw new IllegalArgumentException(where + ": \"ratios\" must be an object");
        }
        for (Map.Entry<String, JsonElement> v : e.getAsJsonObject().entrySet()) {
            String name = where + ": ratios." + v.getKey();
            try {
                if (v.getValue().isJsonObject()) {
                    JsonObject s = v.getValue().getAsJsonObject();
                    if (!s.has("median")) {
                        throw new IllegalArgumentException(name + " has no \"median\"");
                    }
                    map.put(v.getKey(), new Spread(s.get("median").getAsDouble(), optional(s, "q1"), optional(s, "q3"),
                        s.has("rounds") ? s.get("rounds").getAsInt() : 0));
                } else {
                    map.put(v.getKey(), Spread.ofMedian(v.getValue().getAsDouble()));
                }
            } catch (IllegalArgumentException ex) {
                throw ex.getMessage() != null && ex.getMessage().startsWith(name) ? ex
                    : new IllegalArgumentException(name + " is " + v.getValue() + ": " + ex.getMessage(), ex);
            } catch (RuntimeException ex) {
                throw new IllegalArgumentException(name + " is " + v.getValue() + ", not a number or"
                    + " {median, q1, q3, rounds}", ex);
            }
        }
        return map;
    }

    private static double optional(JsonObject o, String field) {
        return o.has(field) ? o.get(field).getAsDouble() : Double.NaN;
    }

    private static Map<String, Double> numbers(JsonObject o, String field, String where) {
        Map<String, Double> map = new TreeMap<>();
        JsonElement e = o.get(field);
        if (e == null) {
            return map;
        }
        if (!e.isJsonObject()) {
            throw new IllegalArgumentException(where + ": \"" + field + "\" must be an object of numbers");
        }
        for (Map.Entry<String, JsonElement> v : e.getAsJsonObject().entrySet()) {
            try {
                map.put(v.getKey(), v.getValue().getAsDouble());
            } catch (RuntimeException ex) {
                throw new IllegalArgumentException(where + ": " + field + "." + v.getKey() + " is " + v.getValue()
                    + ", not a number", ex);
            }
        }
        return map;
    }

    /**
     * Writes the baseline as pretty-printed JSON with keys in order (so diffs stay readable),
     * always in the per-machine form.
     *
     * @param file where to write; parent directories are created
     * @throws IOException if it cannot be written
     */
    public void write(Path file) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("profile", profile.id());
        JsonArray machines = new JsonArray();
        for (Entry entry : entries) {
            JsonObject e = new JsonObject();
            JsonObject m = new JsonObject();
            m.addProperty("cpu", entry.machine().cpu());
            m.addProperty("cores", entry.machine().cores());
            m.addProperty("jdk", entry.machine().jdk());
            m.addProperty("kernel", entry.machine().kernel());
            e.add("machine", m);
            e.addProperty("recorded", entry.recorded());
            e.addProperty("note", entry.note());
            JsonObject r = new JsonObject();
            new TreeMap<>(entry.ratios()).forEach((k, v) -> {
                JsonObject s = new JsonObject();
                s.addProperty("median", round(v.median()));
                if (v.hasQuartiles()) {
                    s.addProperty("q1", round(v.q1()));
                    s.addProperty("q3", round(v.q3()));
                }
                if (v.rounds() > 0) {
                    s.addProperty("rounds", v.rounds());
                }
                r.add(k, s);
            });
            e.add("ratios", r);
            JsonObject a = new JsonObject();
            new TreeMap<>(entry.allocation()).forEach((k, v) -> a.addProperty(k, round(v)));
            e.add("allocation", a);
            machines.add(e);
        }
        o.add("machines", machines);
        if (file.toAbsolutePath().getParent() != null) {
            Files.createDirectories(file.toAbsolutePath().getParent());
        }
        Files.writeString(file, new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n");
    }

    private static double round(double v) {
        return Math.round(v * 10_000.0) / 10_000.0;
    }
}
