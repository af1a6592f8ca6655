// What the app tells the user when the core refuses something, and what it
// offers next. The core's error variant decides the action; the text is
// the core's own message, which is safe to show.
package cn.fieldbook.app

import cn.fieldbook.ffi.ApiException

enum class NextStep { FIX_INPUT, NOT_ALLOWED, LOG_IN, RETRY_LATER, FREE_SPACE, RECOVER, REPORT }

data class UserMessage(
    val text: String,
    val next: NextStep,
    /** Field key -> message, for the form to show beside each field. */
    val fields: Map<String, String> = emptyMap(),
)

object Messages {
    fun of(e: ApiException): UserMessage = when (e) {
        is ApiException.InvalidInput -> UserMessage(
            e.reason,
            NextStep.FIX_INPUT,
            e.problems.filter { it.field.isNotEmpty() }
                .groupBy { it.field }
                .mapValues { (_, ps) -> ps.joinToString("; ") { it.message } },
        )
        is ApiException.NotAllowed -> UserMessage(e.reason, NextStep.NOT_ALLOWED)
        is ApiException.LoginRequired -> UserMessage(e.reason, NextStep.LOG_IN)
        is ApiException.RetryLater -> UserMessage(e.reason, NextStep.RETRY_LATER)
        is ApiException.StorageFull -> UserMessage(e.reason, NextStep.FREE_SPACE)
        is ApiException.Damaged -> UserMessage(e.reason, NextStep.RECOVER)
        is ApiException.Other -> UserMessage(e.reason, NextStep.REPORT)
    }
}
