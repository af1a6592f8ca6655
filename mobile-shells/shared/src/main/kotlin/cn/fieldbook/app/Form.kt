// The checklist form of an inspection, built from the template and the
// inspection as the core reports it. Shared by the Android app and the
// desktop harness.
//
// The form holds no rule of its own: which fields are shown, which are
// required, what a valid answer is and what still blocks a submission all
// come from the core (`InspectionDetail.fields[].visible`, `.problems`). The
// form only turns what the user typed into a `FieldValue` of the field's
// kind and keeps the core's answer to each attempt next to the field.
package cn.fieldbook.app

import cn.fieldbook.ffi.FieldKind
import cn.fieldbook.ffi.FieldState
import cn.fieldbook.ffi.FieldValue
import cn.fieldbook.ffi.InspectionDetail
import cn.fieldbook.ffi.TemplateField
import cn.fieldbook.ffi.TemplateInfo

/** One field as the form renders it. */
data class FormRow(
    val field: TemplateField,
    /** The stored answer, as text for the input widget ("" when unanswered). */
    val text: String,
    /** The label of a stored choice answer, or the text itself. */
    val shown: String,
    /** Values written on other phones at the same time; the user picks. */
    val conflicts: List<String>,
    /** Photos tagged with this field, and how many the field asks for. */
    val photos: Int,
    val photosWanted: Int,
    /** What the core said about this field (last refused input, or what
     *  still blocks submitting). */
    val problem: String?,
) {
    val key: String get() = this.field.key
    val needsMorePhotos: Boolean get() = photos < photosWanted
}

/** The whole form: visible rows in template order, plus record problems. */
data class FormState(
    val inspectionId: String,
    val title: String,
    val editable: Boolean,
    val rows: List<FormRow>,
    /** Problems not tied to one visible field. */
    val recordProblems: List<String>,
    /** Nothing blocks a submission. */
    val canSubmit: Boolean,
)

/** Turning typed text into answers, and answers back into text. */
object Answers {
    /** The value of `text` typed into `field`, or a message saying what
     *  the input should look like. Ranges and option keys are checked by
     *  the core when the answer is saved. */
    fun parse(field: TemplateField, text: String): Result<FieldValue> {
        val t = text.trim()
        return when (field.kind) {
            FieldKind.YES_NO -> when (t.lowercase()) {
                "yes", "true", "是", "1" -> Result.success(FieldValue.YesNo(true))
                "no", "false", "否", "0" -> Result.success(FieldValue.YesNo(false))
                else -> Result.failure(IllegalArgumentException("answer yes or no"))
            }
            FieldKind.NUMBER -> t.replace(',', '.').toDoubleOrNull()
                ?.takeIf { it.isFinite() }
                ?.let { Result.success(FieldValue.Number(it)) }
                ?: Result.failure(IllegalArgumentException("enter a number"))
            FieldKind.CHOICE -> {
                val option = field.options.firstOrNull { it.key == t || it.label == t }
                if (option != null) Result.success(FieldValue.Text(option.key))
                else Result.failure(IllegalArgumentException("pick one of the options"))
            }
            FieldKind.TEXT, FieldKind.DATE -> Result.success(FieldValue.Text(t))
            FieldKind.PHOTO -> Result.failure(IllegalArgumentException("take a photo instead"))
        }
    }

    /** The text an input widget shows for a stored value. */
    fun text(value: FieldValue?): String = when (value) {
        null -> ""
        is FieldValue.YesNo -> if (value.value) "yes" else "no"
        is FieldValue.Number ->
            if (value.value == Math.rint(value.value) && Math.abs(value.value) < 1e15) {
                value.value.toLong().toString()
            } else {
                value.value.toString()
            }
        is FieldValue.Text -> value.value
    }
}

/** Builds form states; `refused` maps field keys to the core's message for
 *  the user's last refused input in that field. */
object Forms {
    fun build(
        template: TemplateInfo,
        detail: InspectionDetail,
        refused: Map<String, String> = emptyMap(),
    ): FormState {
        val states: Map<String, FieldState> = detail.fields.associateBy { it.key }
        val problemsByField = detail.problems.groupBy { it.field }
        val rows = template.fields.mapNotNull { f ->
            val state = states[f.key]
            if (state != null && !state.visible) return@mapNotNull null
            val text = Answers.text(state?.value)
            FormRow(
                field = f,
                text = text,
                shown = state?.valueLabel ?: text,
                conflicts = state?.conflicts.orEmpty().map { Answers.text(it) },
                photos = state?.photos?.toInt() ?: 0,
                photosWanted = f.photosMin.toInt(),
                problem = refused[f.key]
                    ?: problemsByField[f.key]?.joinToString("; ") { it.message },
            )
        }
        val shownKeys = rows.map { it.key }.toSet()
        val recordProblems = detail.problems
            .filter { it.field !in shownKeys }
            .map { it.message }
        return FormState(
            inspectionId = detail.id,
            title = detail.title,
            editable = detail.editable,
            rows = rows,
            recordProblems = recordProblems,
            canSubmit = detail.editable && detail.problems.isEmpty(),
        )
    }
}
