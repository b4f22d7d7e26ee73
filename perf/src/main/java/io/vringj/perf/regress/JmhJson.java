package io.vringj.perf.regress;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the JSON JMH writes with {@code -rf json} (an array of result objects) into
 * {@link BenchmarkResult}s. Only the fields the runner needs are read; anything else is ignored,
 * so files from other JMH versions with extra fields still load.
 */
public final class JmhJson {
    private JmhJson() {
    }

    /**
     * @param file a JMH JSON result file
     * @return its results, in file order
     * @throws IOException if it cannot be read
     * @throws IllegalArgumentException if it is not JMH's JSON (the message names the file and the field)
     */
    public static List<BenchmarkResult> read(Path file) throws IOException {
        return parse(Files.readString(file), file.toString());
    }

    /**
     * @param json JMH's JSON text
     * @param source names the text in error messages
     * @return its results, in order
     * @throws IllegalArgumentException if it is not JMH's JSON
     */
    public static List<BenchmarkResult> parse(String json, String source) {
        JsonElement root;
        try {
            root = JsonParser.parseString(json);
        } catch (JsonParseException e) {
            throw new IllegalArgumentException(source + " is not JSON: " + e.getMessage(), e);
        }
        if (!root.isJsonArray()) {
            throw new IllegalArgumentException(source + ": JMH results must be a JSON array of result objects");
        }
        JsonArray array = root.getAsJsonArray();
        List<BenchmarkResult> results = new ArrayList<>(array.size());
        for (int i = 0; i < array.size(); i++) {
            String where = source + " result " + i;
            if (!array.get(i).isJsonObject()) {
                throw new IllegalArgumentException(where + " is not an object");
            }
            JsonObject o = array.get(i).getAsJsonObject();
            String benchmark = string(o, "benchmark", where);
            Map<String, String> params = new LinkedHashMap<>();
            if (o.has("params") && o.get("params").isJsonObject()) {
                for (Map.Entry<String, JsonElement> p : o.getAsJsonObject("params").entrySet()) {
                    params.put(p.getKey(), p.getValue().getAsString());
                }
            }
            BenchmarkResult.Metric primary = metric(object(o, "primaryMetric", where), where + " primaryMetric");
            Map<String, BenchmarkResult.Metric> secondary = new LinkedHashMap<>();
            if (o.has("secondaryMetrics") && o.get("secondaryMetrics").isJsonObject()) {
                for (Map.Entry<String, JsonElement> m : o.getAsJsonObject("secondaryMetrics").entrySet()) {
                    if (m.getValue().isJsonObject()) {
                        secondary.put(m.getKey(), metric(m.getValue().getAsJsonObject(), where + " " + m.getKey()));
                    }
                }
            }
            results.add(new BenchmarkResult(benchmark, params, primary, secondary));
        }
        return results;
    }

    /**
     * Appends results to a JMH JSON file, in JMH's form (the fields {@link #parse} reads, mode
     * {@code thrpt}), so that one file holds a whole run.
     *
     * @param file a JMH JSON result file
     * @param results results to add after its own
     * @throws IOException if it cannot be read or written
     * @throws IllegalArgumentException if it is not JMH's JSON
     */
    public static void append(Path file, List<BenchmarkResult> results) throws IOException {
        JsonElement root;
        try {
            root = JsonParser.parseString(Files.readString(file));
        } catch (JsonParseException e) {
            throw new IllegalArgumentException(file + " is not JSON: " + e.getMessage(), e);
        }
        if (!root.isJsonArray()) {
            throw new IllegalArgumentException(file + ": JMH results must be a JSON array of result objects");
        }
        JsonArray array = root.getAsJsonArray();
        for (BenchmarkResult r : results) {
            JsonObject o = new JsonObject();
            o.addProperty("benchmark", r.benchmark());
            o.addProperty("mode", "thrpt");
            JsonObject params = new JsonObject();
            r.params().forEach(params::addProperty);
            o.add("params", params);
            o.add("primaryMetric", json(r.primary()));
            JsonObject secondary = new JsonObject();
            r.secondary().forEach((name, m) -> secondary.add(name, json(m)));
            o.add("secondaryMetrics", secondary);
            array.add(o);
        }
        Files.writeString(file, new com.google.gson.GsonBuilder().setPrettyPrinting().serializeSpecialFloatingPointValues()
            .create().toJson(array));
    }

    private static JsonObject json(BenchmarkResult.Metric m) {
        JsonObject o = new JsonObject();
        o.addProperty("score", m.score());
        // JMH writes a missing value as the string "NaN"
        if (Double.isNaN(m.error())) {
            o.addProperty("scoreError", "NaN");
        } else {
            o.addProperty("scoreError", m.error());
        }
        o.addProperty("scoreUnit", m.unit());
        return o;
    }

    private static BenchmarkResult.Metric metric(JsonObject o, String where) {
        return new BenchmarkResult.Metric(number(o, "score", where), o.has("scoreError") ? number(o, "scoreError", where)
            : Double.NaN, o.has("scoreUnit") ? o.get("scoreUnit").getAsString() : "");
    }

    private static String string(JsonObject o, String field, String where) {
        JsonElement e = o.get(field);
        if (e == null || !e.isJsonPrimitive()) {
            throw new IllegalArgumentException(where + " has no \"" + field + "\" string");
        }
        return e.getAsString();
    }

    private static JsonObject object(JsonObject o, String field, String where) {
        JsonElement e = o.get(field);
        if (e == null || !e.isJsonObject()) {
            throw new IllegalArgumentException(where + " has no \"" + field + "\" object");
        }
        return e.getAsJsonObject();
    }

    private static double number(JsonObject o, String field, String where) {
        JsonElement e = o.get(field);
        if (e == null || !e.isJsonPrimitive()) {
            throw new IllegalArgumentException(where + " has no \"" + field + "\" number");
        }
        // JMH writes "NaN" as a string where it has no value
        String text = e.getAsString();
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException ex) {
            throw new IllegalArgumentException(where + " field \"" + field + "\" is \"" + text + "\", not a number", ex);
        }
    }
}
