// A POS talking to posbridge: Java 17, no dependency (examples/README.md). Run it as a single
// file: `java Pos.java [--yes] [SOCKET]` (SOCKET: else $POSBRIDGE_SOCKET, else
// /run/posbridge/api.sock), or compile it with `javac --release 17 Pos.java`.
//
// What a real POS must do, in the order a cashier meets it:
//   1. pay with its own request_id: a declined card is a final answer, sell again with a new id;
//   2. a pay whose outcome is unknown (unknown_result_error): never pay again; when the cashier
//      presses the button, ask get_result with the same request_id until the code is not 2;
//   3. the same request_id sent again: duplicate_request_error, answered by asking get_result;
//   4. refund half of the pay, passing the pay's `data` back as `primary_transaction`.
// --yes (or no console) answers the cashier's prompt. Every step prints one line:
//   STEP id=REQUEST_ID amount=N -> code=C RESULT
// The JDK has no JSON library: the small reader and writer at the end are enough for answers.

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.io.Writer;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class Pos {
    // The sim provider: an amount ending in 51 is declined; 91 answers unknown_result_error and
    // settles on get_result.
    static final long DECLINED = 1051, UNKNOWN = 2591;

    final BufferedReader in;
    final Writer out;

    Pos(String path) throws IOException {
        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        ch.connect(UnixDomainSocketAddress.of(path));
        in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
        out = Channels.newWriter(ch, StandardCharsets.UTF_8);
    }

    /** One JSON line out, one JSON line back (after the request's progress event lines). */
    Map<String, Object> ask(Map<String, Object> request) throws IOException {
        out.write(Json.write(request) + "\n");
        out.flush();
        while (true) {
            String line = in.readLine();
            if (line == null) throw new IOException("posbridge closed the connection");
            Map<String, Object> answer = Json.object(Json.read(line));
            if (answer.containsKey("code")) return answer;
            // A progress event: what the terminal or backend reports while the pay runs.
            System.out.printf("%-10s id=%s %s: %s%n", "progress", answer.get("request_id"),
                    answer.get("stage"), answer.get("message"));
            System.out.flush();
        }
    }

    static long code(Map<String, Object> answer) {
        return (Long) answer.get("code");
    }

    /** The answer in a few words: the data's status, or error_type and reason. */
    static String result(Map<String, Object> answer) {
        if (code(answer) == 0) {
            Map<String, Object> data = Json.object(answer.get("data"));
            return "code=0 " + data.get("status") + " amount=" + data.get("amount");
        }
        return "code=" + code(answer) + " " + answer.get("error_type") + " " + answer.get("reason");
    }

    static void step(String name, String id, long amount, Map<String, Object> answer) {
        System.out.printf("%-10s id=%s amount=%d -> %s%n", name, id, amount, result(answer));
        System.out.flush();
    }

    static void cashierPressesButton(boolean yes) {
        String question = "outcome unknown: press Enter to ask the terminal again";
        if (yes || System.console() == null) {
            System.out.printf("%-10s %s -> yes%n", "cashier", question);
            return;
        }
        System.console().readLine("%-10s %s ", "cashier", question);
    }

    /** Asks until the outcome is known (code 2 means: not yet; ask again). */
    Map<String, Object> getResult(String id, long amount) throws Exception {
        for (int i = 0; i < 120; i++) {
            Map<String, Object> answer = ask(request("get_result", id));
            if (code(answer) != 2 || "manual_check".equals(answer.get("reason"))) {
                step("get_result", id, amount, answer);
                return answer;
            }
            Thread.sleep(1000);
        }
        throw new IllegalStateException(id + ": the outcome is still unknown; check it before selling again");
    }

    static Map<String, Object> request(String action, String id) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("action", action);
        r.put("request_id", id);
        return r;
    }

    public static void main(String[] args) throws Exception {
        boolean yes = false;
        String path = System.getenv().getOrDefault("POSBRIDGE_SOCKET", "/run/posbridge/api.sock");
        for (String a : args) {
            if (a.equals("--yes")) yes = true;
            else path = a;
        }
        Pos pos = new Pos(path);
        String prefix = "pos-java-" + System.currentTimeMillis();

        // 1. A declined card: final; nothing charged.
        Map<String, Object> pay = request("pay", prefix + "-1");
        pay.put("amount", DECLINED);
        pay.put("progress", true);
        step("pay", prefix + "-1", DECLINED, pos.ask(pay));

        // 2. A pay whose outcome is unknown: ask get_result when the cashier says so.
        String id = prefix + "-2";
        pay = request("pay", id);
        pay.put("amount", UNKNOWN);
        pay.put("metadata", Map.of("till", "3"));
        pay.put("progress", true);
        Map<String, Object> answer = pos.ask(pay);
        step("pay", id, UNKNOWN, answer);
        if (code(answer) == 2) {
            cashierPressesButton(yes);
            answer = pos.getResult(id, UNKNOWN);
        }
        if (code(answer) != 0) throw new IllegalStateException("the pay was not approved");
        Map<String, Object> paid = Json.object(answer.get("data"));

        // 3. The same request_id again (a POS that lost the answer and retried): never charged
        //    twice; duplicate_request_error says ask get_result.
        Map<String, Object> again = pos.ask(pay);
        step("pay", id, UNKNOWN, again);
        if (code(again) == 3) pos.getResult(id, UNKNOWN);

        // 4. Refund half, naming the pay by its data.
        long half = (Long) paid.get("amount") / 2;
        String refundId = prefix + "-3";
        Map<String, Object> refund = request("refund", refundId);
        refund.put("amount", half);
        refund.put("primary_transaction", paid);
        answer = pos.ask(refund);
        step("refund", refundId, half, answer);
        if (code(answer) == 2) answer = pos.getResult(refundId, half);
        System.exit(code(answer) == 0 ? 0 : 1);
    }
}

/** Just enough JSON: objects keep their order; integers are Long. */
final class Json {
    private final String s;
    private int i;

    private Json(String s) {
        this.s = s;
    }

    static Object read(String text) {
        Json j = new Json(text);
        Object v = j.value();
        j.space();
        if (j.i != text.length()) throw j.error("trailing characters");
        return v;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> object(Object v) {
        return (Map<String, Object>) v;
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException("JSON: " + what + " at " + i);
    }

    private void space() {
        while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) i++;
    }

    private Object value() {
        space();
        if (i >= s.length()) throw error("unexpected end");
        char c = s.charAt(i);
        if (c == '{') {
            Map<String, Object> m = new LinkedHashMap<>();
            i++;
            space();
            if (s.charAt(i) == '}') { i++; return m; }
            do {
                space();
                String k = string();
                space();
                if (s.charAt(i++) != ':') throw error("':' expected");
                m.put(k, value());
                space();
            } while (s.charAt(i++) == ',');
            if (s.charAt(i - 1) != '}') throw error("'}' expected");
            return m;
        }
        if (c == '[') {
            List<Object> l = new ArrayList<>();
            i++;
            space();
            if (s.charAt(i) == ']') { i++; return l; }
            do {
                l.add(value());
                space();
            } while (s.charAt(i++) == ',');
            if (s.charAt(i - 1) != ']') throw error("']' expected");
            return l;
        }
        if (c == '"') return string();
        for (String word : new String[] {"true", "false", "null"}) {
            if (s.startsWith(word, i)) {
                i += word.length();
                return word.equals("null") ? null : Boolean.valueOf(word);
            }
        }
        int start = i;
        while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
        String n = s.substring(start, i);
        if (n.isEmpty()) throw error("a value expected");
        return n.matches("-?\\d+") ? (Object) Long.valueOf(n) : (Object) Double.valueOf(n);
    }

    private String string() {
        if (s.charAt(i++) != '"') throw error("'\"' expected");
        StringBuilder b = new StringBuilder();
        for (char c; (c = s.charAt(i++)) != '"'; ) {
            if (c != '\\') { b.append(c); continue; }
            char e = s.charAt(i++);
            switch (e) {
                case 'n' -> b.append('\n');
                case 't' -> b.append('\t');
                case 'r' -> b.append('\r');
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'u' -> { b.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; }
                default -> b.append(e);
            }
        }
        return b.toString();
    }

    static String write(Object v) {
        StringBuilder b = new StringBuilder();
        write(b, v);
        return b.toString();
    }

    private static void write(StringBuilder b, Object v) {
        if (v == null) {
            b.append("null");
        } else if (v instanceof Map<?, ?> m) {
            b.append('{');
            String sep = "";
            for (Map.Entry<?, ?> e : m.entrySet()) {
                b.append(sep);
                write(b, e.getKey().toString());
                b.append(':');
                write(b, e.getValue());
                sep = ",";
            }
            b.append('}');
        } else if (v instanceof List<?> l) {
            b.append('[');
            String sep = "";
            for (Object o : l) {
                b.append(sep);
                write(b, o);
                sep = ",";
            }
            b.append(']');
        } else if (v instanceof String str) {
            b.append('"');
            for (char c : str.toCharArray()) {
                if (c == '"' || c == '\\') b.append('\\').append(c);
                else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                else b.append(c);
            }
            b.append('"');
        } else {
            b.append(v); // Long, Double, Boolean
        }
    }
}
