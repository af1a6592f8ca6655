// Provisioning through the server's admin HTTP API, as a county
// administrator would: users with roles and areas, and the site registry.
package cn.fieldbook.harness

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.security.SecureRandom

class Admin(private val server: String, user: String, password: String) {
    private val http = HttpClient.newHttpClient()
    private val token: String

    init {
        val actor = ByteArray(16).also { SecureRandom().nextBytes(it) }
            .joinToString("") { "%02x".format(it) }
        val body = """{"username":${json(user)},"password":${json(password)},"device":"harness-admin-$actor","actor":"$actor"}"""
        val r = post("/v1/login", "application/json", body, null)
        check(r.statusCode() == 200) { "admin login: ${r.statusCode()} ${r.body()}" }
        token = Regex("\"token\"\\s*:\\s*\"([^\"]+)\"").find(r.body())?.groupValues?.get(1)
            ?: error("admin login reply has no token: ${r.body()}")
    }

    fun addUser(name: String, password: String, role: String, areas: List<String>) {
        val body = """{"name":${json(name)},"password":${json(password)},"role":"$role","areas":[${areas.joinToString(",") { json(it) }}]}"""
        val r = post("/v1/admin/users", "application/json", body, token)
        check(r.statusCode() in 200..299) { "add user $name: ${r.statusCode()} ${r.body()}" }
    }

    fun importSites(csv: String): String {
        val r = post("/v1/admin/sites", "text/csv", csv, token)
        check(r.statusCode() in 200..299) { "import sites: ${r.statusCode()} ${r.body()}" }
        return r.body()
    }

    private fun post(path: String, type: String, body: String, bearer: String?): HttpResponse<String> {
        val b = HttpRequest.newBuilder(URI.create(server + path))
            .header("content-type", type)
            .POST(HttpRequest.BodyPublishers.ofString(body))
        if (bearer != null) b.header("authorization", "Bearer $bearer")
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString())
    }

    companion object {
        fun json(s: String): String =
            "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
    }
}
