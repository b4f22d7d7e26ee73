package io.vringj.perf.regress;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * The figures a run is compared with, committed in the repository ({@code perf/baseline/quick.json},
 * {@code perf/baseline/full.json}): the tracked ratios by id and the B/op of each hot path, with
 * where and when they were measured.
 *
 * <pre>
 * { "profile": "quick", "recorded": "2026-...Z", "machine": "...", "note": "...",
 *   "ratios": { "q1.vringj-vs-agrona.64B.batch1": 1.23, ... },
 *   "allocation": { "RingThroughputBenchmark.vringj[batch=1, payloadBytes=64]": 0.001, ... } }
 * </pre>
 *
 * @param profile the profile it was measured with
 * @param recorded when, ISO-8601
 * @param machine a description of the machine
 * @param note free text (e.g. what else was running)
 * @param ratios ratio values by {@link RatioSpec#id()}
 * @param allocation B/op by {@link Checks#allocationKey(BenchmarkResult)}
 */
public record Baseline(Profile profile, String recorded, String machine, String note, Map<String, Double> ratios,
                       Map<String, Double> allocation) {

    /**
     * @param profile the profile
     * @param recorded when
     * @param machine the machine
     * @param note free text
     * @param ratios ratio values by id
     * @param allocation B/op by key
     */
    public Baseline {
        Objects.requireNonNull(profile, "profile");
        recorded = Objects.requireNonNullElse(recorded, "");
        machine = Objects.requireNonNullElse(machine, "");
        note = Objects.requireNonNullElse(note, "");
        ratios = Map.copyOf(ratios);
        allocation = Map.copyOf(allocation);
    }

    /**
     * @param file a baseline file
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
        return new Baseline(profile, text(o, "recorded"), text(o, "machine"), text(o, "note"),
            numbers(o, "ratios", file), numbers(o, "allocation", file));
    }

    private static String text(JsonObject o, String field) {
        JsonElement e = o.get(field);
        return e == null || e.isJsonNull() ? "" : e.getAsString();
    }

    private static Map<String, Double> numbers(JsonObject o, String field, Path file) {
        Map<String, Double> map = new TreeMap<>();
        JsonElement e = o.get(field);
        if (e == null) {
            return map;
        }
        if (!e.isJsonObject()) {
            throw new IllegalArgumentException("baseline " + file + ": \"" + field + "\" must be an object of numbers");
        }
        for (Map.Entry<String, JsonElement> v : e.getAsJsonObject().entrySet()) {
            try {
                map.put(v.getKey(), v.getValue().getAsDouble());
            } catch (RuntimeException ex) {
                throw new IllegalArgumentException("baseline " + file + ": " + field + "." + v.getKey() + " is "
                    + v.getValue() + ", not a number", ex);
            }
        }
        return map;
    }

    /**
     * Writes the baseline as pretty-printed JSON with keys in order (so diffs stay readable).
     *
     * @param file where to write; parent directories are created
     * @throws IOException if it cannot be written
     */
    public void write(Path file) throws IOException {
        JsonObject o = new JsonObject();
        o.addProperty("profile", profile.id());
        o.addProperty("recorded", recorded);
        o.addProperty("machine", machine);
        o.addProperty("note", note);
        JsonObject r = new JsonObject();
        new TreeMap<>(ratios).forEach((k, v) -> r.addProperty(k, round(v)));
        o.add("ratios", r);
        JsonObject a = new JsonObject();
        new TreeMap<>(allocation).forEach((k, v) -> a.addProperty(k, round(v)));
        o.add("allocation", a);
        if (file.toAbsolutePath().getParent() != null) {
            Files.createDirectories(file.toAbsolutePath().getParent());
        }
        Files.writeString(file, new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n");
    }

    private static double round(double v) {
        return Math.round(v * 10_000.0) / 10_000.0;
    }
}
