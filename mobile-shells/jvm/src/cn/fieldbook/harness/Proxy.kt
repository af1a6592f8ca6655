// A loopback TCP relay between the phones and the server that can be
// switched off: "going offline" for the harness without stopping a server
// it may not own. Offline, it refuses new connections and cuts open ones,
// which is what a phone sees when it loses signal.
package cn.fieldbook.harness

import java.io.InputStream
import java.io.OutputStream
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.Collections
import kotlin.concurrent.thread

class Proxy(private val targetHost: String, private val targetPort: Int) : AutoCloseable {
    private val listener = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    private val open = Collections.synchronizedSet(mutableSetOf<Socket>())

    @Volatile
    var online = true
        set(value) {
            field = value
            if (!value) cutAll()
        }

    val url: String get() = "http://127.0.0.1:${listener.localPort}"

    init {
        thread(isDaemon = true, name = "proxy-accept") {
            while (!listener.isClosed) {
                val client = try { listener.accept() } catch (e: Exception) { break }
                if (!online) {
                    client.close()
                    continue
                }
                val upstream = try {
                    Socket().apply { connect(InetSocketAddress(targetHost, targetPort), 5_000) }
                } catch (e: Exception) {
                    client.close()
                    continue
                }
                open += client
                open += upstream
                pump(client.getInputStream(), upstream.getOutputStream(), client, upstream)
                pump(upstream.getInputStream(), client.getOutputStream(), client, upstream)
            }
        }
    }

    private fun pump(from: InputStream, to: OutputStream, a: Socket, b: Socket) {
        thread(isDaemon = true, name = "proxy-pump") {
            val buf = ByteArray(64 * 1024)
            try {
                while (true) {
                    val n = from.read(buf)
                    if (n < 0) break
                    to.write(buf, 0, n)
                    to.flush()
                }
            } catch (e: Exception) {
                // The other side went away or the relay was cut.
            } finally {
                a.close(); b.close()
                open -= a; open -= b
            }
        }
    }

    private fun cutAll() {
        synchronized(open) {
            open.forEach { runCatching { it.close() } }
            open.clear()
        }
    }

    override fun close() {
        listener.close()
        cutAll()
    }
}
